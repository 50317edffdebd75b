"""Pseudo-labels: eval photos that the first round's vote labels confidently, added to the training
photos of a second round (config `pseudo_labels`).

Each fold's labels come from the vote of that fold's members alone, the models trained without
the fold's people, so that a second-round model validated on the fold has learned nothing from
its labels, not even through the labels of the eval photos: its out-of-fold scores stay honest.
Labels are hard (the vote's most likely class, kept at or above `threshold`), so that a pseudo
photo goes through the same targets, Mixup / CutMix, loss and sampler as a labelled one. A years
head also needs an age in years, which the vote does not give: each pseudo photo gets one drawn
from the training photos of its band (seeded), so that the years learn the band's own spread
rather than one age.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from facemask.classes.labels import DEFAULT_AGE_BINS, age_band, decode_class
from facemask.ensemble.vote import Vote, vote_probabilities
from facemask.utils.errors import PipelineError
from facemask.utils.files import Member


def choose_pseudo_labels(
    eval_logits: dict[Member, pd.DataFrame],
    vote: Vote,
    image_ids: Sequence[str],
    train_photos: pd.DataFrame,
    threshold: float,
    age_bins: Sequence[int] = DEFAULT_AGE_BINS,
    seed: int = 0,
) -> pd.DataFrame:
    """Per fold, the eval photos whose vote by that fold's members gives its most likely class a
    probability of at least `threshold`: fold, ImageID, label (that class), confidence (its
    probability) and an age drawn from the `train_photos` (age, label) of the class's age band."""
    folds = sorted({fold for _, fold in eval_logits})
    bands = train_photos["age"].map(lambda age: age_band(age, age_bins))
    ages_of_band = {band: train_photos.loc[bands == band, "age"].to_numpy() for band in range(3)}
    chosen = []
    for fold in folds:
        members = {member: table for member, table in eval_logits.items() if member.fold == fold}
        probabilities = vote_probabilities(members, vote, image_ids)
        confidence, label = probabilities.max(1), probabilities.argmax(1)
        kept = np.flatnonzero(confidence >= threshold)
        rng = np.random.default_rng([seed, fold])
        ages = [draw_age(ages_of_band, band, rng) for band in decode_class(label[kept])[2]]
        chosen.append(
            pd.DataFrame(
                {
                    "fold": fold,
                    "ImageID": np.asarray(image_ids)[kept],
                    "label": label[kept],
                    "confidence": confidence[kept],
                    "age": np.asarray(ages, dtype=np.int64),
                }
            )
        )
    return pd.concat(chosen, ignore_index=True)


def draw_age(ages_of_band: dict[int, np.ndarray], band: int, rng: np.random.Generator) -> int:
    """One age of a training photo of `band`."""
    ages = ages_of_band[int(band)]
    if not len(ages):
        raise PipelineError(f"no training photo has an age in band {band}: a pseudo photo there gets no age")
    return int(rng.choice(ages))
