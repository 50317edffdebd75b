"""Shared fixtures: a small generated data set in the competition layout."""

import pytest

from facemask.cache import prepare_cache
from facemask.data import index_eval_photos, index_train_photos
from facemask.demo import make_demo_data


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """12 training and 4 eval people of the demo generator, 48 x 64 pixels."""
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, train_people=12, eval_people=4, width=48, height=64, seed=3)
    return root


@pytest.fixture(scope="session")
def demo_cache(demo_dir):
    """The demo_dir photos in the image cache at 36 x 36 (for 32 x 32 models): train and eval paths."""
    return prepare_test_cache(demo_dir, (36, 36))


def prepare_test_cache(root, size) -> dict:
    """The image cache of the data set at `root`, rows in index order, at `size`: train and eval paths."""
    outputs = {"train": root / "cache" / f"{size[0]}x{size[1]}" / "train.npy", "eval": root / "cache" / f"{size[0]}x{size[1]}" / "eval.npy"}
    prepare_cache(root, index_train_photos(root, (30, 60)), index_eval_photos(root), size, outputs)
    return outputs


def model_settings(**block) -> dict:
    """A model block as the workflow passes it to a train job: the schema's defaults filled in."""
    from pathlib import Path

    from snakemake.utils import validate

    config = {"models": {"model": block}}
    validate(config, str(Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml"))
    settings = config["models"]["model"]
    settings.pop("ensemble_weight")
    return settings
