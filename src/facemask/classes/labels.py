"""The competition's labels: three tasks folded into 18 classes (class = 6*mask + 3*gender + age).
The tasks are defined here once; every count, stride and task code elsewhere derives from TASKS."""

import math
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

from facemask.config.defaults import schema_default

MASK_NAMES = ("wear", "incorrect", "not_wear")
GENDER_NAMES = ("male", "female")
AGE_NAMES = ("<30", "30-59", ">=60")
#: the three tasks and their class names, in the order of the 18-class code
TASKS = {"mask": MASK_NAMES, "gender": GENDER_NAMES, "age": AGE_NAMES}
TASK_SIZES = {task: len(names) for task, names in TASKS.items()}
NUM_CLASSES = math.prod(TASK_SIZES.values())
#: how much one step of each task's code moves the class: mask 6, gender 3, age 1
TASK_STRIDES = {task: math.prod(list(TASK_SIZES.values())[i + 1 :]) for i, task in enumerate(TASKS)}

#: photo file stem -> mask code, the seven photos every person folder holds
MASK_BY_PHOTO = {
    "mask1": 0,
    "mask2": 0,
    "mask3": 0,
    "mask4": 0,
    "mask5": 0,
    "incorrect_mask": 1,
    "normal": 2,
}
GENDER_CODES = {name: code for code, name in enumerate(GENDER_NAMES)}
DEFAULT_AGE_BINS = tuple(schema_default("age_bins"))
#: the oldest age a years head tells apart (older people count as this age)
MAX_AGE = 100


def checked_age_cuts(age_bins: Sequence[int]) -> tuple[int, int]:
    """The two age cut points as a tuple; a ValueError if they are not two increasing ages (the
    config's age_bins key is checked at load by config.consistency.check_age_bins)."""
    bins = tuple(int(a) for a in age_bins)
    if len(bins) != 2 or not 0 < bins[0] < bins[1]:
        raise ValueError(
            f"age_bins must be two increasing positive ages, e.g. [30, 60]; got {list(age_bins)}"
        )
    return bins


def age_band(age: int, age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> int:
    """Age band code: 0 below the first cut, 1 up to the second cut, 2 at or above it."""
    return bisect_right(checked_age_cuts(age_bins), int(age))


def age_band_names(age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> list[str]:
    """The three age bands in words, e.g. ['<30', '30-59', '>=60']."""
    low, high = checked_age_cuts(age_bins)
    return [f"<{low}", f"{low}-{high - 1}", f">={high}"]


def encode_class(mask, gender, age) -> np.ndarray:
    """The 18-class label from the three task codes (scalars or arrays)."""
    codes = zip(TASKS, (mask, gender, age), strict=True)
    # scalars give a NumPy integer
    return sum(TASK_STRIDES[task] * np.asarray(code) for task, code in codes)  # type: ignore[return-value]


def encode_year_and_class(age, label) -> np.ndarray:
    """Joint labels of a years head, year * 18 + class (ages above MAX_AGE count as MAX_AGE), so
    that Mixup / CutMix mix the years' targets as they mix the classes'."""
    return np.clip(np.asarray(age), 0, MAX_AGE) * NUM_CLASSES + np.asarray(label)


def decode_class(label) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (mask, gender, age) task codes of 18-class labels."""
    label = np.asarray(label)
    return tuple(label // TASK_STRIDES[task] % TASK_SIZES[task] for task in TASKS)


def class_name(label: int) -> str:
    """A readable name such as 'wear/female/30-59'."""
    mask, gender, age = (int(x) for x in decode_class(label))
    return f"{MASK_NAMES[mask]}/{GENDER_NAMES[gender]}/{AGE_NAMES[age]}"


#: each task's code of each of the 18 classes
TASK_OF_CLASS = dict(zip(TASKS, decode_class(np.arange(NUM_CLASSES)), strict=True))
#: column names of the 18 class logits in the pipeline's logit tables
LOGIT_COLUMNS = tuple(f"logit_{c:02d}" for c in range(NUM_CLASSES))
#: column names of the age-in-years probabilities (0..MAX_AGE) in the out-of-fold tables of a years head
YEAR_COLUMNS = tuple(f"age_p{year:03d}" for year in range(MAX_AGE + 1))
#: each class's (mask, gender) pair, 2 * mask + gender, and its age band: class = 3 * pair + band
PAIR_OF_CLASS = np.arange(NUM_CLASSES) // TASK_SIZES["age"]
BAND_OF_CLASS = TASK_OF_CLASS["age"]
#: the number of (mask, gender) pairs
NUM_PAIRS = NUM_CLASSES // TASK_SIZES["age"]


def log_band_of_year(age_cuts: Sequence[int]) -> np.ndarray:
    """(MAX_AGE + 1, 3): 0 at the age band of each age 0..MAX_AGE at `age_cuts` (see age_band), -inf
    at the other bands (the log of each age's one-hot band; see band_log_probabilities)."""
    bands = np.searchsorted(checked_age_cuts(age_cuts), np.arange(MAX_AGE + 1), side="right")
    return np.where(bands[:, None] == np.arange(TASK_SIZES["age"]), 0.0, -np.inf)


def band_log_probabilities(year_log_probs, log_bands, logsumexp=logsumexp):
    """A years head's age bands' log-probabilities from its years' (rows: photos; columns: ages
    0..MAX_AGE): log P(band), P(band) the sum of the years' probabilities within the band, as the
    log-sum-exp over the years of their log-probabilities plus `log_bands` (log_band_of_year).
    The one place of this arithmetic: NumPy arrays with SciPy's logsumexp (ensemble.age_cuts),
    torch tensors with torch.logsumexp (heads.AgeYearsClassifier, on its device and precision,
    keeping the gradient)."""
    return logsumexp(year_log_probs[:, :, None] + log_bands, 1)
