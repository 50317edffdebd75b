"""Every option that changes the DAG, the bundle or the vote, walked end to end through Snakemake
on tiny demo data: for each, the ensemble bundle (`facemask predict`, and the `predict` target)
answers the eval photos exactly as submission.csv does."""

import json
from pathlib import Path

import pandas as pd
import pytest
import timm
import yaml
from safetensors.torch import save_file

from .conftest import ROOT, snakemake
from .test_predict_many import facemask_predict

pytestmark = pytest.mark.workflow

#: a tiny run: 24 + 6 people of the demo generator, 2 folds, timm's test network at 32 x 32
TINY = {
    "data_dir": "data/demo",
    "results_dir": "results/matrix",
    "eval_labels": "data/demo/eval/labels.csv",
    "device": "cpu",
    "folds": {"k": 2},
    "threads": {"train": 1, "predict": 1, "prepare": 1},
    "tta": {"batch_size": 32},
    "demo": {"train_people": 24, "eval_people": 6, "width": 48, "height": 64, "seed": 5},
}


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


#: the options, two members a run: each run's options, and what its members are
CASES = {
    "years heads, fitted weights, safetensors, compile, fp16": lambda weights: {
        "ensemble": {"fit_weights": True},
        "models": {
            "years_fitted_cuts": years(
                True,
                head="multi",
                pretrained=str(weights),
                task_losses={"age": [{"name": "focal", "gamma": 2.0}]},
            ),
            "years_training_cuts": years(False, compile="aot_eager", precision="fp16"),
        },
    },
    "plain argmax, three heads with task losses, mixing": lambda weights: {
        "ensemble": {"match_class_shares": False},
        "models": {
            "single": block(mix={"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "prob": 0.5}),
            "multi": block(
                head="multi", task_losses={"mask": [{"name": "cross_entropy", "label_smoothing": 0.1}]}
            ),
        },
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_bundle_answers_the_eval_photos_as_the_submission_for_every_option(tmp_path, case):
    weights = tmp_path / "test_efficientnet.safetensors"
    save_file(timm.create_model("test_efficientnet").state_dict(), weights)
    config = TINY | CASES[case](weights) | {"predict_sets": {"eval_photos": "data/demo/eval/images"}}
    config["run_models"] = list(config["models"])
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "submission", "predict", configs=("case.yaml",))
    assert run.returncode == 0, run.stderr[-5000:]
    results = tmp_path / "results/matrix"
    submission = pd.read_csv(results / "submission.csv", dtype={"ImageID": str}).set_index("ImageID")["ans"]

    cli = facemask_predict(
        tmp_path, "data/demo/eval/images", "--ensemble", results, "--out", tmp_path / "cli.csv"
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    for answers in (
        pd.read_csv(tmp_path / "cli.csv"),
        pd.read_csv(results / "predictions/eval_photos/predictions.csv"),
    ):
        by_photo = answers.assign(ImageID=[Path(path).name for path in answers["path"]]).set_index("ImageID")[
            "ans"
        ]
        assert len(by_photo) == len(submission) == 42
        pd.testing.assert_series_equal(by_photo.loc[submission.index], submission, check_names=False)
    # a years head's bundle entry cuts its bands where its predict jobs do: at fitted cuts only with fit_cuts
    for member in json.loads((results / "ensemble/ensemble.json").read_text())["members"]:
        fitted = results / "train" / member["model"] / "age_cuts.json"
        fit_cuts = config["models"][member["model"]].get("age_years", {}).get("fit_cuts", False)
        assert fitted.exists() == fit_cuts
        assert member["age_cuts"] == (json.loads(fitted.read_text())["age_cuts"] if fit_cuts else None)
