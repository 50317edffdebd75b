"""The demo's faces: ages over the real range with the competition's band shares, age cues that
grow with every year (beyond 60 too) and show at the demo's training size, and a seeded generator."""

import numpy as np
import pandas as pd
from PIL import Image

from facemask.classes.labels import age_band
from facemask.data.demo import AGE_BAND_SHARES, aged_look, draw_person, draw_photo, make_demo_data

AGES = (20, 40, 60, 80)


def hair_brightness(person: dict) -> float:
    """The mean brightness beside a long-haired face, photos drawn at 96 x 128 and seen at the
    demo's training size (48 x 64), over a few photos (the face moves a little in each)."""
    patches = []
    for seed in range(4):
        photo = draw_photo(person, "mask1", 96, 128, np.random.default_rng(seed))
        pixels = np.asarray(photo.resize((48, 64), Image.Resampling.BICUBIC), dtype=float)
        patches += [pixels[28:37, 8:10], pixels[28:37, 38:40]]
    return float(np.mean(patches))


def test_ages_span_18_to_80_in_the_competitions_band_shares():
    rng = np.random.default_rng(0)
    ages = np.array([draw_person(rng)["age"] for _ in range(1000)])
    assert ages.min() == 18 and 75 <= ages.max() <= 80
    shares = np.bincount([age_band(age) for age in ages], minlength=3) / len(ages)
    assert np.allclose(shares, AGE_BAND_SHARES, atol=0.03), shares
    old = ages[ages >= 60]
    assert len(set(old)) >= 12 and (old < 65).sum() > (old >= 70).sum() > 0, np.bincount(old)


def test_the_age_cues_grow_with_the_years_beyond_60_too_and_show_at_training_size():
    rng = np.random.default_rng(0)
    for _ in range(5):
        person = draw_person(rng) | {"gender": "female", "face": (0.0, 0.0, 1.0)}
        looks = [aged_look(person | {"age": age}) for age in AGES]
        assert [look["wrinkles"] for look in looks] == sorted(look["wrinkles"] for look in looks)
        assert [len(look["spots"]) for look in looks] == sorted(len(look["spots"]) for look in looks)
        hair = [hair_brightness(person | {"age": age}) for age in AGES]
        assert np.all(np.diff(hair) > 10), hair
        assert hair[-1] - hair[-2] > 20, hair
    steady = person | {"pace": (0.0, 0.0, 0.0)}  # one who ages at the common pace
    young, old = (aged_look(steady | {"age": age}) for age in (60, 80))
    assert old["wrinkles"] > young["wrinkles"] + 0.2 and len(old["spots"]) > len(young["spots"])


def test_neighbouring_ages_look_alike_and_distant_ones_apart():
    people = [draw_person(np.random.default_rng(seed)) for seed in range(200)]

    def hair(age):
        return np.array([np.mean(aged_look(person | {"age": age})["hair"]) for person in people])

    # near the 30 cut, one in three 28-year-olds has greyer hair than a 31-year-old, one by one
    assert np.mean(hair(28)[:, None] > hair(31)[None, :]) > 0.3
    assert hair(20).max() < hair(60).min() and hair(40).max() < hair(80).min()


def test_the_same_seed_writes_byte_identical_files_named_by_the_people(tmp_path):
    for run in ("a", "b"):
        make_demo_data(tmp_path / run, train_people=3, eval_people=2, width=48, height=64, seed=5)
    files = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*") if path.is_file())
    assert files == sorted(
        path.relative_to(tmp_path / "b") for path in (tmp_path / "b").rglob("*") if path.is_file()
    )
    assert all((tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes() for file in files)
    train = pd.read_csv(tmp_path / "a" / "train" / "train.csv", dtype={"id": str})
    assert list(train["path"]) == [f"{p.id}_{p.gender}_{p.race}_{p.age}" for p in train.itertuples()]
    assert train["age"].between(18, 80).all()
