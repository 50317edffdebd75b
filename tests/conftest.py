"""Shared fixtures: a small generated data set in the competition layout."""

import pytest

from facemask.demo import make_demo_data


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """12 training and 4 eval people of the demo generator, 48 x 64 pixels."""
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, train_people=12, eval_people=4, width=48, height=64, seed=3)
    return root


def model_settings(**block) -> dict:
    """A model block as the workflow passes it to a train job: the schema's defaults filled in."""
    from pathlib import Path

    from snakemake.utils import validate

    config = {"models": {"model": block}}
    validate(config, str(Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml"))
    settings = config["models"]["model"]
    settings.pop("ensemble_weight")
    return settings
