"""Profile-stratified folds: by person, stratified on gender x age band, seeded."""

import pandas as pd
import pytest

from facemask.data.folds import make_folds
from facemask.data.photo_index import index_train_photos
from facemask.utils.errors import DataError


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    from facemask.data.demo import make_demo_data

    root = tmp_path_factory.mktemp("folds")
    make_demo_data(root, train_people=60, eval_people=1, width=32, height=32, seed=1)
    return index_train_photos(root, (30, 60))


def test_every_person_is_in_exactly_one_fold(index):
    folds = make_folds(index, k=5, seed=0)
    assert folds["person"].is_unique
    assert set(folds["person"]) == set(index["person"])
    assert set(folds["fold"]) == set(range(5))


def test_folds_are_stratified_on_gender_and_age_band(index):
    folds = make_folds(index, k=3, seed=0)
    counts = pd.crosstab(folds["stratum"], folds["fold"])
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all(), counts


def test_the_same_seed_gives_the_same_folds_and_another_seed_others(index):
    def fold_of_person(seed):
        return make_folds(index, 5, seed).set_index("person")["fold"].sort_index()

    assert make_folds(index, 5, seed=7).equals(make_folds(index, 5, seed=7))
    assert not fold_of_person(7).equals(fold_of_person(8))


@pytest.mark.parametrize("k", [1, 61])
def test_k_below_2_or_above_the_number_of_people_is_refused(index, k):
    with pytest.raises(DataError, match="k="):
        make_folds(index, k, seed=0)
