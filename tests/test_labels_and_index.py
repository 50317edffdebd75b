"""Label parsing (folder names, age cuts, 18 classes) and the photo index."""

import pandas as pd
import pytest

from facemask.classes.labels import age_band, checked_age_cuts, class_name, decode_class, encode_class
from facemask.data.photo_index import index_eval_photos, index_train_photos, parse_person_folder
from facemask.utils.errors import DataError


@pytest.mark.parametrize(("age", "band"), [(18, 0), (29, 0), (30, 1), (57, 1), (59, 1), (60, 2), (75, 2)])
def test_age_bands_use_the_competition_cuts_by_default(age, band):
    assert age_band(age) == band


@pytest.mark.parametrize(("age", "band"), [(57, 1), (58, 2), (60, 2)])
def test_moving_the_upper_cut_to_58_relabels_58_and_59_as_old(age, band):
    assert age_band(age, (30, 58)) == band


@pytest.mark.parametrize("bins", [(60, 30), (30, 30), (30,), (0, 60), (30, 58, 60)])
def test_age_cuts_out_of_order_or_miscounted_are_refused(bins):
    with pytest.raises(ValueError, match="age_bins"):
        checked_age_cuts(bins)


def test_the_18_classes_round_trip_through_the_three_tasks():
    labels = list(range(18))
    mask, gender, age = decode_class(labels)
    assert list(encode_class(mask, gender, age)) == labels
    assert encode_class(1, 1, 2) == 6 + 3 + 2
    assert class_name(17) == "not_wear/female/>=60"


def test_person_folder_names_parse_into_id_gender_race_age():
    assert parse_person_folder("000001_female_Asian_45") == {
        "id": "000001",
        "gender": "female",
        "race": "Asian",
        "age": 45,
    }


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("000001_woman_Asian_45", "gender"),
        ("000001_female_Asian_4x", "age"),
        ("000001_female_45", "expected"),
    ],
)
def test_unparsable_person_folders_are_named_in_the_error(name, problem):
    with pytest.raises(DataError, match=problem):
        parse_person_folder(name)


def test_index_has_seven_labelled_photos_per_person_in_any_extension(demo_dir):
    index = index_train_photos(demo_dir, (30, 60))
    people = pd.read_csv(demo_dir / "train" / "train.csv", dtype=str)
    assert len(index) == 7 * len(people)
    assert index.groupby("person")["photo"].nunique().eq(7).all()
    assert {p.rsplit(".", 1)[1] for p in index["path"]} > {"jpg"}  # mixed extensions and cases
    assert (index["label"] == 6 * index["mask_label"] + 3 * index["gender_label"] + index["age_label"]).all()
    assert (index.loc[index["photo"] == "normal", "mask_label"] == 2).all()
    assert (index.loc[index["photo"] == "incorrect_mask", "mask_label"] == 1).all()
    assert (index.loc[index["photo"].str.startswith("mask"), "mask_label"] == 0).all()
    old = index["age"] >= 60
    assert (index.loc[old, "age_label"] == 2).all() and (index.loc[~old, "age_label"] < 2).all()


def test_eval_index_keeps_the_order_of_info_csv(demo_dir):
    info = pd.read_csv(demo_dir / "eval" / "info.csv", dtype=str)
    assert list(index_eval_photos(demo_dir)["ImageID"]) == list(info["ImageID"])
