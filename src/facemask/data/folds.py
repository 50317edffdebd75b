"""Profile-stratified k folds: every photo of a person in one fold, stratified on gender x age band."""

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from facemask.utils.errors import DataError
from facemask.classes.labels import age_band


def make_folds(index: pd.DataFrame, k: int, seed: int, age_bins=(30, 60)) -> pd.DataFrame:
    """One row per person (person, gender, age, stratum, fold), folds 0..k-1 from scikit-learn's
    StratifiedGroupKFold over the photos grouped by person, stratified on gender x age band."""
    people = index.drop_duplicates("person")[["person", "gender", "age"]].reset_index(drop=True)
    if not 2 <= k <= len(people):
        raise DataError(f"folds: k={k} needs 2 <= k <= the number of people ({len(people)})")
    bands = people["age"].map(lambda age: age_band(age, age_bins))
    people["stratum"] = people["gender"] + "/age" + bands.astype(str)
    photos = index[["person"]].merge(people[["person", "stratum"]], on="person")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold_of = {}
    for fold, (_, held_out) in enumerate(splitter.split(photos, photos["stratum"], groups=photos["person"])):
        fold_of.update(dict.fromkeys(photos["person"].iloc[held_out], fold))
    people["fold"] = people["person"].map(fold_of).astype(int)
    return people.sort_values(["fold", "person"]).reset_index(drop=True)
