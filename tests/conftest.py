"""Shared fixtures: a small generated data set in the competition layout."""

import pytest

from facemask.demo import make_demo_data


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """12 training and 4 eval people of the demo generator, 48 x 64 pixels."""
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, train_people=12, eval_people=4, width=48, height=64, seed=3)
    return root
