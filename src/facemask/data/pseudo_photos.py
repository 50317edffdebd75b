"""The pseudo-labelled eval photos a second-round train job adds to its training photos (see
facemask.ensemble.pseudo_labels, which chooses them)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.utils.errors import PipelineError
from facemask.classes.labels import decode_class


@dataclass(frozen=True)
class PseudoPhotos:
    """The pseudo-labelled eval photos a train job adds to its training photos: as index rows
    (path, person, label, mask_label, gender_label, age, age_label, and `row`, their row in the eval cache)
    and the eval image `cache` they are read from."""

    photos: pd.DataFrame
    cache: Path

    @classmethod
    def of_fold(
        cls, labels: pd.DataFrame, eval_index: pd.DataFrame, fold: int, cache: str | Path
    ) -> "PseudoPhotos":
        """The pseudo photos of `fold` from the pseudo-label table `labels`, placed by the eval
        index (ImageID, path; the cache's row order)."""
        placed = eval_index.assign(row=np.arange(len(eval_index))).set_index("ImageID")
        picked = labels[labels["fold"] == fold]
        unknown = sorted(set(picked["ImageID"]) - set(placed.index))
        if unknown:
            raise PipelineError(
                f"pseudo labels name {len(unknown)} photos that the eval index lacks (e.g. {unknown[0]!r}): "
                "they are stale; delete them and rerun"
            )
        labels_of_fold = picked["label"].to_numpy(dtype=np.int64)
        mask, gender, band = decode_class(labels_of_fold)
        found = placed.loc[picked["ImageID"]]
        photos = pd.DataFrame(
            {
                "path": found["path"].to_numpy(),
                "person": "eval:" + picked["ImageID"].astype(str).to_numpy(),
                "label": labels_of_fold,
                "mask_label": mask,
                "gender_label": gender,
                "age": picked["age"].to_numpy(dtype=np.int64),
                "age_label": band,
                "row": found["row"].to_numpy(dtype=np.int64),
            }
        )
        return cls(photos, Path(cache))
