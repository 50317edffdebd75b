"""The whole workflow through Snakemake: the tiny run (config/tiny.yaml over the demo's config) for
the submission, the scores, the plots, the report and the incremental reruns."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy.special import softmax
from sklearn.metrics import f1_score

from facemask.classes.decision import class_shares, decide_classes

from .conftest import ROOT, TINY, demo_work_folder, snakemake

pytestmark = pytest.mark.workflow


def planned_jobs(dry_run: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count} (empty when nothing is to be done)."""
    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr
    return {
        rule: int(n)
        for rule, n in re.findall(r"^(\w+)\s+(\d+)$", dry_run.stdout, re.MULTILINE)
        if rule != "total"
    }


def with_changed_config(workdir: Path, name: str, change) -> tuple[str, ...]:
    """A third config file that updates the tiny run's by `change(models)`; the configs to pass."""
    tiny = yaml.safe_load((workdir / "tiny.yaml").read_text())
    change(tiny["models"])
    (workdir / name).write_text(yaml.safe_dump({"models": tiny["models"]}))
    return (*TINY, name)


def tiny_dry_run(workdir: Path, *args: str, configs: tuple[str, ...] = TINY) -> dict[str, int]:
    """The jobs that a dry run of `args` (default: the submission) plans in the tiny run's folder."""
    return planned_jobs(snakemake(workdir, *(args or ("submission",)), "--dry-run", configs=configs))


def test_the_submission_has_every_eval_photo_in_info_csv_order(tiny_run):
    info = pd.read_csv(tiny_run / "data/demo/eval/info.csv", dtype=str)
    submission = pd.read_csv(tiny_run / "results/tiny/submission.csv", dtype={"ImageID": str})
    assert list(submission.columns) == ["ImageID", "ans"]
    assert list(submission["ImageID"]) == list(info["ImageID"])
    assert submission["ans"].between(0, 17).all() and submission["ans"].dtype.kind == "i"


def test_eval_scores_name_each_model_and_the_ensemble(tiny_run):
    by_model = pd.read_csv(tiny_run / "results/tiny/eval_scores.csv").set_index("model")
    assert list(by_model.index) == sorted(["vit_small_r26", "efficientnetv2_rw_t", "resnet34"]) + ["ensemble"]
    ensemble = json.loads((tiny_run / "results/tiny/eval_scores.json").read_text())
    assert by_model.loc["ensemble", "macro_f1"] == pytest.approx(ensemble["macro_f1"])
    assert (by_model["n_images"] == 30 * 7).all()


def test_cv_scores_cover_every_fold_model_and_the_ensemble(tiny_run):
    scores = pd.read_csv(tiny_run / "results/tiny/cv_scores.csv", dtype={"fold": str})
    rows = set(zip(scores["model"], scores["fold"], strict=True))
    models = ("vit_small_r26", "efficientnetv2_rw_t", "resnet34")
    assert rows == {(m, f) for m in models for f in ("0", "1", "all")} | {
        ("ensemble", "all")
    }  # no fit_weights
    assert scores.set_index(["model", "fold"]).loc[("ensemble", "all"), "n_photos"] == 60 * 7
    history = pd.read_csv(tiny_run / "results/tiny/train/resnet34/fold0/history.csv")
    columns = ["epoch", "lr", "mean_lr", "train_loss", "val_loss", "val_f1", "val_accuracy"]
    columns += ["val_mask_f1", "val_gender_f1", "val_age_f1", "train_images_per_s"]
    assert list(history.columns[:11]) == columns
    assert len(history) == 2


def test_nothing_runs_when_nothing_changed(tiny_run):
    dry_run = snakemake(tiny_run, "submission", "--dry-run", configs=TINY)
    assert planned_jobs(dry_run) == {}, dry_run.stdout
    assert "Nothing to be done" in dry_run.stdout


#: what one model's change rebuilds: its 2 folds' training and predictions, then the vote and summaries
ONE_MODEL_REBUILT = {
    "train": 2,
    "predict_eval": 2,
    "ensemble_bundle": 1,
    "soft_vote": 1,
    "cv_summary": 1,
    "score_submission": 1,
    "plot_training_curves": 1,
    "plot_oof": 1,
    "plot_class_distribution": 1,
    "track_results": 1,
    "submission": 1,
}


def test_changing_one_models_lr_reruns_only_that_models_jobs(tiny_run):
    configs = with_changed_config(
        tiny_run, "lr.yaml", lambda models: models["resnet34"].update(optimizer={"lr": 1e-3})
    )
    assert tiny_dry_run(tiny_run, configs=configs) == ONE_MODEL_REBUILT


def test_adding_a_model_runs_only_its_jobs_and_the_ensemble(tiny_run):
    configs = with_changed_config(
        tiny_run,
        "added.yaml",
        lambda models: models.update(resnet18={"arch": "resnet18", "image_size": [32, 32], "epochs": 1}),
    )
    assert tiny_dry_run(tiny_run, configs=configs) == ONE_MODEL_REBUILT


def test_the_image_cache_is_built_once_per_input_size_and_rebuilt_only_when_its_settings_change(tiny_run):
    # the three models share 32 x 32
    assert [p.name for p in (tiny_run / "results/tiny/cache").iterdir()] == ["36x36"]
    for split, photos in (("train", 60 * 7), ("eval", 30 * 7)):
        report = json.loads((tiny_run / f"results/tiny/cache/36x36/{split}_report.json").read_text())
        assert report[f"{split}_photos"] == photos
    # a whole photo's pixels depend on no scale or detector: setting them reruns nothing
    (tiny_run / "whole.yaml").write_text("cache: {crop: {kind: whole, scale: 1.5, detector: haar}}\n")
    assert tiny_dry_run(tiny_run, configs=(*TINY, "whole.yaml")) == {}
    (tiny_run / "face.yaml").write_text("cache: {crop: {kind: face}}\n")
    planned = tiny_dry_run(tiny_run, configs=(*TINY, "face.yaml"))
    assert planned["find_faces"] == 2 and planned["prepare_images"] == 2 and planned["train"] == 6
    assert planned["predict_eval"] == 6
    # the faces are found once, in a folder of the detector and its device setting: a new
    # scale crops them again, without searching
    found = snakemake(
        tiny_run,
        "results/tiny/faces/mtcnn-auto/train.csv",
        "results/tiny/faces/mtcnn-auto/eval.csv",
        configs=(*TINY, "face.yaml"),
    )
    assert found.returncode == 0, found.stderr[-3000:]
    (tiny_run / "scale.yaml").write_text("cache: {crop: {kind: face, scale: 1.5}}\n")
    planned = tiny_dry_run(tiny_run, configs=(*TINY, "scale.yaml"))
    assert "find_faces" not in planned and planned["prepare_images"] == 2


def test_one_fold_is_a_target_of_its_own(tmp_path):
    # the training side only: training waits for nothing of the eval side
    assert tiny_dry_run(demo_work_folder(tmp_path), "results/tiny/train/resnet34/fold1/checkpoint.pt") == {
        "demo_data": 1,
        "index_photos": 1,
        "make_folds": 1,
        "prepare_images": 1,
        "train": 1,
    }


def params_changed(summary: subprocess.CompletedProcess) -> set[str]:
    """The rules whose outputs Snakemake's `--summary` says are stale because their params changed."""
    assert summary.returncode == 0, summary.stdout + summary.stderr
    rows = [line.split("\t") for line in summary.stdout.splitlines()]
    columns = rows[0]
    return {
        row[columns.index("rule")] for row in rows[1:] if row[columns.index("status")] == "params changed"
    }


@pytest.mark.parametrize(
    ("module", "rules"),
    [
        ("data/loader.py", {"train", "predict_eval"}),  # reached through train/fold.py and model/inference.py
        ("report/plots.py", {"plot_training_curves", "plot_oof", "plot_class_distribution", "plot_crops"}),
        ("ensemble/fit.py", {"ensemble_bundle", "cv_summary", "plot_oof", "score_submission"}),
        (
            "utils/files.py",
            {
                "demo_data",
                "index_photos",
                "prepare_images",
                "make_folds",
                "train",
                "predict_eval",
                "ensemble_bundle",
                "soft_vote",
                "cv_summary",
                "score_submission",
                "plot_training_curves",
                "plot_oof",
                "plot_class_distribution",
                "plot_crops",
                "track_results",
            },
        ),
    ],
)
def test_editing_a_module_reruns_exactly_the_rules_whose_scripts_reach_it(tiny_run, tmp_path, module, rules):
    code = copy_of_the_code(tmp_path)
    with open(code / "src" / "facemask" / module, "a") as source:
        source.write("\nEDITED = True\n")
    assert (
        params_changed(
            snakemake(tiny_run, "-s", str(code / "Snakefile"), "submission", "--summary", configs=TINY)
        )
        == rules
    )


def test_a_comment_or_docstring_edit_reruns_nothing(tiny_run, tmp_path):
    code = copy_of_the_code(tmp_path)
    losses = code / "src" / "facemask" / "model" / "losses.py"
    source = losses.read_text().replace('"""Cross-entropy', '"""A reworded docstring. Cross-entropy', 1)
    losses.write_text(source.replace("\nimport torch\n", "\n# a comment\nimport torch  # and another\n", 1))
    assert losses.read_text().count("comment") == 1 and "reworded" in losses.read_text()
    assert (
        params_changed(
            snakemake(tiny_run, "-s", str(code / "Snakefile"), "submission", "--summary", configs=TINY)
        )
        == set()
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    """A copy of the workflow and the package, dates kept (so that only a later edit is new)."""
    code = tmp_path / "code"
    code.mkdir()
    for part in ("Snakefile", "workflow", "scripts", "src"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy2)(ROOT / part, code / part)
    return code


def test_running_more_folds_trains_only_the_new_ones(tiny_run):
    (tiny_run / "one_fold.yaml").write_text("folds: {run: [1]}\n")
    assert tiny_dry_run(tiny_run, configs=(*TINY, "one_fold.yaml")).get("train", 0) == 0
    (tiny_run / "all_folds.yaml").write_text("folds: {run: [0, 1]}\n")
    assert tiny_dry_run(tiny_run, configs=(*TINY, "all_folds.yaml")) == {}


def test_the_workflow_passes_snakemakes_linter():
    lint = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--configfile", "config/demo.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_the_plots_are_real_images(tiny_run):
    plots = sorted((tiny_run / "results/tiny/plots").glob("*.png"))
    assert [p.name for p in plots] == [
        "class_distribution.png",
        "crops.png",
        "oof_class_f1.png",
        "oof_confusion_matrix.png",
        "training_curves_efficientnetv2_rw_t.png",
        "training_curves_resnet34.png",
        "training_curves_vit_small_r26.png",
    ]
    for plot in plots:
        with Image.open(plot) as image:
            assert image.format == "PNG" and image.width >= 600 and image.height >= 300, plot.name
            low, high = image.convert("L").getextrema()
            assert high - low > 100, f"{plot.name} is blank"


def test_cv_scores_equal_those_recomputed_from_the_stored_out_of_fold_logits(tiny_run):
    """Each fold decided as the submission decides (ensemble.match_class_shares), matched to the
    class shares of the other fold's photos."""
    scores = pd.read_csv(tiny_run / "results/tiny/cv_scores.csv", dtype={"fold": str}).set_index(
        ["model", "fold"]
    )
    logit_columns = [f"logit_{c:02d}" for c in range(18)]
    train = tiny_run / "results/tiny/train"
    oof = {
        (model, fold): pd.read_csv(train / f"{model}/fold{fold}/oof_logits.csv").sort_values("path")
        for model in ("vit_small_r26", "efficientnetv2_rw_t", "resnet34")
        for fold in range(2)
    }
    shares = {fold: class_shares(oof[("resnet34", 1 - fold)]["label"]) for fold in range(2)}
    voted = []
    for fold in range(2):
        for model in ("vit_small_r26", "efficientnetv2_rw_t", "resnet34"):
            table = oof[(model, fold)]
            predicted = decide_classes(softmax(table[logit_columns].to_numpy(), axis=1), shares[fold])
            assert scores.loc[(model, str(fold)), "macro_f1"] == pytest.approx(
                f1_score(table["label"], predicted, average="macro")
            )
            assert scores.loc[(model, str(fold)), "accuracy"] == pytest.approx(
                (table["label"] == predicted).mean()
            )
            history = pd.read_csv(train / f"{model}/fold{fold}/history.csv")
            assert scores.loc[(model, str(fold)), "kept_epoch"] == history["epoch"].iloc[-1]  # keep: last
        probabilities = np.mean(
            [
                softmax(oof[(model, fold)][logit_columns].to_numpy(), axis=1)
                for model in ("vit_small_r26", "efficientnetv2_rw_t", "resnet34")
            ],
            axis=0,
        )
        voted.append(
            pd.DataFrame(
                {
                    "label": oof[("resnet34", fold)]["label"],
                    "voted": decide_classes(probabilities, shares[fold]),
                }
            )
        )
    voted = pd.concat(voted)
    assert scores.loc[("ensemble", "all"), "macro_f1"] == pytest.approx(
        f1_score(voted["label"], voted["voted"], average="macro")
    )
    assert scores.loc[("ensemble", "all"), "age_f1"] == pytest.approx(
        f1_score(voted["label"] % 3, voted["voted"] % 3, average="macro")
    )


def test_the_snakemake_report_collects_the_scores_and_plots(tiny_run):
    run = snakemake(tiny_run, "--report", "report.html", configs=TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    html = (tiny_run / "report.html").read_text(errors="replace")
    for expected in (
        "Cross-validation",
        "Training curves",
        "Submission",
        "cv_scores.csv",
        "oof_confusion_matrix.png",
        "training_curves_resnet34.png",
        "class_distribution.png",
        "crops.png",
        "eval_scores.json",
    ):
        assert expected in html, expected


#: what turning pseudo_labels on for one model adds: the labels, its 2 folds trained again and
#: predicting, the second round's vote, scores (the first round's rules, under pseudo/) and the
#: rounds side by side; nothing of the first
PSEUDO_ROUND = {
    "pseudo_labels": 1,
    "train": 2,
    "predict_eval": 2,
    "ensemble_bundle": 1,
    "soft_vote": 1,
    "cv_summary": 1,
    "score_submission": 1,
    "compare_rounds": 1,
    "submission": 1,
}


def test_pseudo_labels_train_a_second_round_of_their_own_validated_on_training_photos_only(
    tiny_run, tmp_path
):
    work = shutil.copytree(tiny_run, tmp_path / "run", symlinks=True)
    # at 0.05 (under 1/18) every eval photo passes, in both folds
    (work / "pseudo.yaml").write_text(
        "pseudo_labels: {threshold: 0.05, models: [resnet34]}\ntracking: false\n"
    )
    configs = (*TINY, "pseudo.yaml")
    assert tiny_dry_run(work, configs=configs) == PSEUDO_ROUND
    first_checkpoints = {
        path: path.stat().st_mtime_ns for path in (work / "results/tiny/train").rglob("*.pt")
    }
    run = snakemake(work, "submission", configs=configs)
    assert run.returncode == 0, run.stderr[-5000:]
    assert {path: path.stat().st_mtime_ns for path in first_checkpoints} == first_checkpoints
    assert len(list((work / "results/tiny/pseudo/train").rglob("checkpoint.pt"))) == 2
    pseudo = work / "results/tiny/pseudo"
    labels = pd.read_csv(pseudo / "labels.csv")
    assert labels.groupby("fold").size().to_dict() == {0: 30 * 7, 1: 30 * 7}
    for fold in (0, 1):
        first, second = (
            pd.read_csv(work / f"results/tiny/{results}train/resnet34/fold{fold}/oof_logits.csv")
            for results in ("", "pseudo/")
        )
        assert list(second["path"]) == list(first["path"])  # the fold's training photos, no eval photo
        log = (pseudo / f"logs/train/resnet34/fold{fold}.log").read_text()
        assert f"+ {30 * 7} pseudo-labelled" in log
    rounds = pd.read_csv(pseudo / "rounds.csv")
    first_round = {(model, 1) for model in ("efficientnetv2_rw_t", "resnet34", "vit_small_r26", "ensemble")}
    assert set(zip(rounds["model"], rounds["round"], strict=True)) == first_round | {
        ("resnet34", 2),
        ("ensemble", 2),
    }
    assert rounds["eval_macro_f1"].notna().all()
    submission = pd.read_csv(pseudo / "submission.csv", dtype={"ImageID": str})
    info = pd.read_csv(work / "data/demo/eval/info.csv", dtype=str)
    assert list(submission["ImageID"]) == list(info["ImageID"])
    (work / "threshold.yaml").write_text("pseudo_labels: {threshold: 0.5, models: [resnet34]}\n")
    assert tiny_dry_run(work, configs=(*configs, "threshold.yaml")) == PSEUDO_ROUND
