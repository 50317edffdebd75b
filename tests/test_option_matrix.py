"""The options that change the DAG, the bundle or the vote, each set at least once (not in every
value or combination), walked end to end through Snakemake on tiny demo data in three runs (a face
crop by MTCNN, by the Haar cascade, and none; each TTA merge mode once): for each, the ensemble
bundle (`facemask predict`, and the `predict` target) answers the eval photos exactly as
submission.csv does. CASES lists the options that each run walks; a failure names them."""

import json
from pathlib import Path

import pandas as pd
import pytest
import timm
import yaml
from safetensors.torch import save_file

from facemask.ensemble.bundle import Bundle

from .conftest import ROOT, snakemake
from .test_predict_many import facemask_predict

pytestmark = pytest.mark.workflow

#: a tiny run: 24 + 6 people of the demo generator, 2 folds, timm's test network at 32 x 32
TINY = {
    "data_dir": "data/demo",
    "results_dir": "results/matrix",
    "eval_labels": "data/demo/eval/labels.csv",
    "device": "cpu",
    "tracking": False,
    "folds": {"k": 2},
    "threads": {"train": 1, "predict": 1, "prepare": 1},
    "demo": {"train_people": 24, "eval_people": 6, "width": 48, "height": 64, "seed": 5},
}
EVAL_PHOTOS = "data/demo/eval/images"


def block(**options) -> dict:
    """A model block of timm's smallest test network, 2 epochs at 32 x 32."""
    return {
        "arch": "test_efficientnet",
        "pretrained": False,
        "image_size": [32, 32],
        "batch_size": 16,
        "epochs": 2,
        "optimizer": {"lr": 2e-3},
        "scheduler": {"warmup_epochs": 0.5},
    } | options


def years(fit_cuts: bool, **options) -> dict:
    return block(age_years={"sigma": 3.0, "fit_cuts": fit_cuts}, **options)


#: the three runs by a short name: the options each walks (named in its failures)
CASES = {
    "mtcnn crop, gmean TTA, fitted weights, years heads": (
        "cache.crop face by mtcnn at scale 1.8, cache.margin 1.25",
        "tta HorizontalFlip + Multiply + Add, merged by gmean",
        "ensemble.fit_weights with combine tasks and temperature, precision bf16, age_bins [30, 58]",
        "years heads with fitted and with training cuts, a multi years head, local safetensors weights",
        "sampler class, ema, the step and plateau schedules, a focal task loss",
        "compile aot_eager, precision fp16, accumulation_steps 2, clip_grad_norm, train_age_bins",
    ),
    "haar crop, tsharpen TTA, plain argmax, two of three folds": (
        "cache.crop face by haar, in the flat form of earlier versions (face_crop, face_detector)",
        "tta VerticalFlip + Rotate90 + Scale, merged by tsharpen",
        "ensemble.match_class_shares false, folds.run [0, 2] of k 3",
        "Mixup / CutMix, cross-entropy with label smoothing and class weights + F1 loss",
        "sampler age, ema without warm-up, early stopping, the none schedule",
        "a three-task head with a task loss, precision bf16, the cosine schedule, ensemble_weight 2",
        "model_kwargs, augment",
    ),
    "centre crop, Resize and FiveCrops TTA, predict_dir, run_models, one fold": (
        "cache.crop centre, tta Resize + FiveCrops, merged by mean, predict_dir instead of predict_sets",
        "run_models leaving a block out, sgd with momentum, the tanh schedule, ensemble.combine stack",
        "folds.run [1] of k 3: one fold, to its CV scores",
    ),
}
#: each run's config, given the local weights file
CONFIGS = {
    "mtcnn crop, gmean TTA, fitted weights, years heads": lambda weights: {
        "cache": {"crop": {"kind": "face", "detector": "mtcnn", "scale": 1.8}, "margin": 1.25},
        "tta": {
            "transforms": [
                "HorizontalFlip",
                {"Multiply": {"factors": [0.9, 1.1]}},
                {"Add": {"values": [0, 0.05]}},
            ],
            "merge": "gmean",
        },
        "ensemble": {"fit_weights": True, "combine": "tasks", "temperature": True},
        "precision": "bf16",
        "age_bins": [30, 58],
        "predict_sets": {"eval_photos": EVAL_PHOTOS},
        "models": {
            "years_fitted_cuts": years(
                True,
                head="multi",
                pretrained=str(weights),
                task_losses={"age": [{"name": "focal", "gamma": 2.0}]},
                sampler="class",
                ema={"decay": 0.9},
                scheduler={"name": "step", "decay_epochs": 1, "decay_rate": 0.5, "warmup_epochs": 0},
            ),
            "years_training_cuts": years(
                False,
                compile="aot_eager",
                precision="fp16",
                accumulation_steps=2,
                clip_grad_norm=1.0,
                scheduler={"name": "plateau", "warmup_epochs": 0},
                train_age_bins=[30, 55],
            ),
        },
    },
    "haar crop, tsharpen TTA, plain argmax, two of three folds": lambda weights: {
        "cache": {"face_crop": True, "face_detector": "haar"},
        "tta": {
            "transforms": [
                "VerticalFlip",
                {"Rotate90": {"angles": [0, 90]}},
                {"Scale": {"scales": [1, 0.875]}},
            ],
            "merge": "tsharpen",
        },
        "ensemble": {"match_class_shares": False},
        "folds": {"k": 3, "run": [0, 2]},
        "predict_sets": {"eval_photos": EVAL_PHOTOS},
        "models": {
            "single": block(
                mix={"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "prob": 0.5},
                loss=[
                    {"name": "cross_entropy", "label_smoothing": 0.1, "class_weights": True},
                    {"name": "f1", "weight": 0.5},
                ],
                sampler="age",
                ema={"decay": 0.9, "warmup": False},
                epochs=3,
                early_stopping_patience=1,
                keep="best",
                scheduler={"name": "none"},
            ),
            "multi": block(
                head="multi",
                task_losses={"mask": [{"name": "cross_entropy", "label_smoothing": 0.1}]},
                precision="bf16",
                model_kwargs={"drop_rate": 0.1},
                augment={"scale": [0.6, 1.0], "hflip": 0.0, "color_jitter": 0.4},
                ensemble_weight=2.0,
            ),
        },
    },
    "centre crop, Resize and FiveCrops TTA, predict_dir, run_models, one fold": lambda weights: {
        "cache": {"crop": {"kind": "centre"}},
        "folds": {"k": 3, "run": [1]},
        "tta": {
            "transforms": [
                {"Resize": {"sizes": [[32, 32], [24, 24]], "original_size": [32, 32]}},
                {"FiveCrops": {"crop_height": 28, "crop_width": 28}},
            ],
            "merge": "mean",
        },
        "ensemble": {"combine": "stack"},
        "run_models": ["plain", "sgd_tanh"],
        "models": {
            "plain": block(),
            "sgd_tanh": block(
                optimizer={"name": "sgd", "lr": 1e-2, "momentum": 0.9},
                scheduler={"name": "tanh", "warmup_epochs": 0},
            ),
            "not_run": block(arch="test_resnet"),
        },
    },
}


@pytest.mark.parametrize(("case", "options"), CASES.items(), ids=list(CASES))
def test_the_bundle_answers_the_eval_photos_as_the_submission_for_every_option(tmp_path, case, options):
    weights = tmp_path / "test_efficientnet.safetensors"
    save_file(timm.create_model("test_efficientnet").state_dict(), weights)
    config = TINY | CONFIGS[case](weights)
    config.setdefault("run_models", list(config["models"]))  # not config.yaml's seed models
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(config))
    predict_dir = [] if config.get("predict_sets") else ["--config", f"predict_dir={EVAL_PHOTOS}"]
    # the submission, the predictions and the CV scores (the plots are the tiny run's to check)
    targets = ("results/matrix/submission.csv", "results/matrix/cv_scores.csv", "predict")
    run = snakemake(tmp_path, *targets, *predict_dir, configs=("case.yaml",))
    assert run.returncode == 0, (options, run.stderr[-5000:])
    results = tmp_path / "results/matrix"
    folds = config["folds"].get("run", range(config["folds"]["k"]))
    cv_scores = pd.read_csv(results / "cv_scores.csv", dtype={"fold": str})
    assert set(cv_scores["fold"]) == {*map(str, folds), "all"} and cv_scores["macro_f1"].notna().all(), (
        options
    )
    submission = pd.read_csv(results / "submission.csv", dtype={"ImageID": str}).set_index("ImageID")["ans"]

    cli = facemask_predict(tmp_path, EVAL_PHOTOS, "--ensemble", results, "--out", tmp_path / "cli.csv")
    assert cli.returncode == 0, (options, cli.stderr[-3000:])
    predict_set = "eval_photos" if config.get("predict_sets") else "images"
    for answers in (
        pd.read_csv(tmp_path / "cli.csv"),
        pd.read_csv(results / f"predictions/{predict_set}/predictions.csv"),
    ):
        by_photo = answers.assign(ImageID=[Path(path).name for path in answers["path"]]).set_index("ImageID")[
            "ans"
        ]
        assert len(by_photo) == len(submission) == 42
        pd.testing.assert_series_equal(
            by_photo.loc[submission.index], submission, check_names=False, obj=f"answers with {options}"
        )
    bundle = Bundle.read(results)
    run_models = config.get("run_models") or list(config["models"])
    folds = config["folds"].get("run") or range(config["folds"]["k"])
    # the CV row of the submission's vote scores the bundle's vote: its weights, fitted out of fold,
    # or in-sample (and said so) where one fold leaves nothing to cross-fit on
    submitted = cv_scores[cv_scores["submitted"]]
    assert len(submitted) == 1 and submitted.iloc[0]["weights"] == " ".join(
        f"{model}={bundle.vote.weights[model]:.2f}" for model in sorted(run_models)
    )
    assert submitted.iloc[0]["fitted_on"].startswith("in-sample") == (len(folds) == 1)
    assert sorted(member.key for member in bundle.members) == sorted(
        (model, fold) for model in run_models for fold in folds
    )
    # a years head's bundle entry cuts its bands where its predict jobs do: at fitted cuts only with fit_cuts
    for member in bundle.members:
        fitted = results / "train" / member.model / "age_cuts.json"
        fit_cuts = config["models"][member.model].get("age_years", {}).get("fit_cuts", False)
        assert fitted.exists() == fit_cuts
        assert member.age_cuts == (tuple(json.loads(fitted.read_text())["age_cuts"]) if fit_cuts else None)
