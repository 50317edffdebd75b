"""The three head kinds, one object each: what a block's settings make of its head, and that a
checkpoint brings back the head it was trained with."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facemask.classes.labels import LOGIT_COLUMNS, NUM_CLASSES, YEAR_COLUMNS
from facemask.config.schema import validated
from facemask.config.settings import Settings
from facemask.model.classifier import create_classifier
from facemask.model.heads import ClassesHead, TasksHead, YearsHead, head_of, head_of_checkpoint
from facemask.utils.errors import ConfigError

from .conftest import model_settings

ROOT = Path(__file__).parents[1]
KINDS = {
    "18-way": ({}, ClassesHead, 18, 18),
    "three tasks": ({"head": "multi"}, TasksHead, 8, 18),
    "years, 18-way pairs": ({"age_years": {"sigma": 3.0}}, YearsHead, 6 + 101, 18 * 101),
    "years, task pairs": ({"head": "multi", "age_years": {"sigma": 3.0}}, YearsHead, 5 + 101, 18 * 101),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_makes_its_head_which_a_checkpoint_brings_back(kind):
    settings, head_type, outputs, targets = KINDS[kind]
    block = model_settings(arch="test_resnet", train_age_bins=[30, 58], **settings)
    head = head_of(block, (30, 60))
    assert (type(head), head.outputs, head.num_targets) == (head_type, outputs, targets)
    assert head.age_cuts == ([30, 58] if head_type is YearsHead else None)
    again = head_of_checkpoint({"arch": "test_resnet"} | head.checkpoint_meta())
    assert (type(again), again.outputs, again.age_cuts) == (head_type, outputs, head.age_cuts)
    photos = pd.DataFrame({"age": [25, 70], "path": ["a", "b"]})
    model = head.training_module(create_classifier("test_resnet", head=head).eval())
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32)).numpy()
    table = head.out_of_fold(photos, out)
    years = list(YEAR_COLUMNS) if head_type is YearsHead else []
    assert list(table.columns) == ["age", "path", *LOGIT_COLUMNS, *years]
    assert np.asarray(head.targets(photos, [3, 17])).max() < head.num_targets
    assert out.shape[1] == NUM_CLASSES + len(years)


def test_fitted_cuts_without_a_years_head_are_refused_by_key():
    config = validated({"models": {"tiny": {"arch": "test_resnet", "age_years": {"fit_cuts": True}}}})
    with pytest.raises(ConfigError, match=r"^config: models.tiny.age_years.fit_cuts: only a years head"):
        Settings.from_config(config)


def test_fitted_cuts_are_eval_side_not_part_of_the_block_a_train_job_gets():
    years = {"sigma": 3.0, "fit_cuts": True}
    config = validated({"models": {"tiny": {"arch": "test_resnet", "age_years": years}}})
    settings = Settings.from_config(config)
    assert settings.age_cut_models == ("tiny",)
    assert "fit_cuts" not in settings.models["tiny"].as_config()["age_years"]


def test_only_the_heads_module_asks_which_kind_of_head_a_block_has():
    question = re.compile(
        r"age_years\.sigma|\[\"sigma\"\]|is_years_head|isinstance\([^)]*(YearsHead|AgeYears)"
    )
    files = [
        *ROOT.glob("src/facemask/*.py"),
        *ROOT.glob("scripts/**/*.py"),
        *ROOT.glob("workflow/rules/*.smk"),
    ]
    asking = [
        str(f.relative_to(ROOT)) for f in files if f.name != "heads.py" and question.search(f.read_text())
    ]
    assert not asking
