"""Train once: a setting that only changes how the trained members are voted, decided, predicted,
scored or tracked replans no train job (nor any image cache), however many GPU hours those are."""

import pytest
import yaml

from .test_workflow import tiny_dry_run

pytestmark = pytest.mark.workflow

#: each eval-side setting, changed from the tiny run's (config/demo.yaml + config/tiny.yaml)
EVAL_SIDE_CHANGES = {
    "ensemble.match_class_shares": {"ensemble": {"match_class_shares": False}},
    "ensemble.fit_weights": {"ensemble": {"fit_weights": True}},
    "ensemble.combine tasks": {"ensemble": {"combine": "tasks"}},
    "ensemble.combine stack": {"ensemble": {"combine": "stack"}},
    "ensemble.temperature": {"ensemble": {"temperature": True}},
    "models.*.ensemble_weight": {"models": {"resnet34": {"ensemble_weight": 3.0}}},
    "models.*.age_years.fit_cuts": {"models": {"resnet34": {"age_years": {"fit_cuts": True}}}},
    "tta": {"tta": {"transforms": ["HorizontalFlip"], "merge": "gmean", "batch_size": 8}},
    "eval_labels": {"eval_labels": None},
    "predict_sets": {"predict_sets": {"more": "data/demo/eval/images"}},
    "predict_dir": {"predict_dir": "data/demo/eval/images"},
    "tracking off": {"tracking": False},
    "tracking experiment": {"tracking": {"experiment": "another"}},
}


@pytest.mark.parametrize("change", list(EVAL_SIDE_CHANGES), ids=list(EVAL_SIDE_CHANGES))
def test_an_eval_side_setting_plans_no_train_job(tiny_run, change):
    (tiny_run / "eval_side.yaml").write_text(yaml.safe_dump(EVAL_SIDE_CHANGES[change]))
    targets = ["submission", "predict"] if "predict" in change else ["submission"]
    planned = tiny_dry_run(tiny_run, *targets, configs=("demo.yaml", "tiny.yaml", "eval_side.yaml"))
    print(change, planned)  # the figures of the train-once table (pytest -s)
    assert not {"train", "find_faces", "prepare_images", "make_folds"} & set(planned), planned
