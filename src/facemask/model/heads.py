"""The three kinds of head a classifier ends in, one object each, so that training, prediction and the
vote never branch on which kind a block has: the 18-way head (`head: single`), three task heads
(`head: multi`) and a years head (either of them for mask and gender, beside the age in years;
`age_years.sigma` set). Only the config checks read the settings that choose the kind, to stop a
setting the kind would ignore before any job runs (facemask.train.block_check: `task_losses` on a
single head; facemask.config.settings: `age_years.fit_cuts` without a years head).

A head owns what differs between the kinds: the backbone's output width, the classifier module
around the backbone and the module that training and validation run (a years head's also returns
the years), the one-hot targets of a photo, the loss, the out-of-fold columns, what a checkpoint
records of it, and how its 18-class decision is cut into age bands.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from facemask.classes.labels import (
    BAND_OF_CLASS,
    LOGIT_COLUMNS,
    MAX_AGE,
    NUM_CLASSES,
    NUM_PAIRS,
    PAIR_OF_CLASS,
    TASK_OF_CLASS,
    TASK_SIZES,
    YEAR_COLUMNS,
    band_log_probabilities,
    checked_age_cuts,
    encode_year_and_class,
    log_band_of_year,
)
from facemask.config.blocks import ModelBlock
from facemask.model.losses import CompositeLoss, YearsLoss
from facemask.utils.errors import PipelineError

#: where each task's logits start among three task heads' outputs (mask 0, gender 3, age 5)
TASK_OFFSETS = dict(zip(TASK_SIZES, [0, *np.cumsum(list(TASK_SIZES.values()))[:-1].tolist()], strict=True))
MASKS, GENDERS, AGE_BANDS = TASK_SIZES.values()
#: the loss of a head rebuilt from a checkpoint, which predicts and is not trained
PLAIN_LOSS: tuple[Mapping, ...] = ({"name": "cross_entropy"},)


class ThreeHeadClassifier(torch.nn.Module):
    """A backbone with three heads (mask 3, gender 2, age 3 logits) whose output is the 18-class
    log-probability log p(mask) + log p(gender) + log p(age): the product of the three softmaxes,
    so training, TTA and the soft vote treat it like a single 18-way head."""

    task_index: torch.Tensor

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.backbone = backbone
        task_index = np.stack([TASK_OFFSETS[task] + TASK_OF_CLASS[task] for task in TASK_SIZES])
        self.register_buffer("task_index", torch.from_numpy(task_index), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.backbone(images).split(list(TASK_SIZES.values()), 1)
        log_probs = torch.cat([task_logits.log_softmax(1) for task_logits in logits], 1)
        return log_probs[:, self.task_index].sum(1)


class AgeYearsClassifier(torch.nn.Module):
    """A backbone whose outputs are mask and gender logits (`pair_outputs`: 6 for the pairs of an
    18-way head, or 3 + 2 of task heads) and MAX_AGE + 1 logits over the age in years. Its output
    is the 18-class log-probability log p(mask, gender) + log P(age band), P(band) the sum of the
    years' probabilities within the band at `age_cuts` (a buffer: saved, and reset by `set_age_cuts`)."""

    age_cuts: torch.Tensor
    log_band_of_year: torch.Tensor
    task_of_pair: torch.Tensor
    pair_of_class: torch.Tensor
    band_of_class: torch.Tensor

    def __init__(self, backbone: torch.nn.Module, pair_outputs: int, age_cuts):
        super().__init__()
        self.backbone, self.pair_outputs = backbone, pair_outputs
        pairs = torch.arange(NUM_PAIRS)  # pair = 2 * mask + gender
        self.register_buffer(
            "task_of_pair", torch.stack([pairs // GENDERS, MASKS + pairs % GENDERS]), persistent=False
        )
        self.register_buffer("pair_of_class", torch.from_numpy(PAIR_OF_CLASS), persistent=False)
        self.register_buffer("band_of_class", torch.from_numpy(BAND_OF_CLASS), persistent=False)
        self.register_buffer("age_cuts", torch.tensor(checked_age_cuts(age_cuts), dtype=torch.float32))
        self.register_buffer("log_band_of_year", torch.zeros(MAX_AGE + 1, AGE_BANDS), persistent=False)
        self.set_age_cuts(age_cuts)
        # a loaded state dict brings its age cuts: derive the years' bands from them
        self.register_load_state_dict_post_hook(
            lambda module, _: module.set_age_cuts(module.age_cuts.tolist())
        )

    def set_age_cuts(self, age_cuts) -> None:
        """Cut the bands at `age_cuts` (labels.log_band_of_year)."""
        self.age_cuts.copy_(torch.tensor(checked_age_cuts(age_cuts), dtype=torch.float32))
        self.log_band_of_year.copy_(torch.from_numpy(log_band_of_year(age_cuts)))

    def with_years(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 18-class and the years' log-probabilities."""
        logits = self.backbone(images).float()
        if self.pair_outputs == NUM_PAIRS:
            pair_log_probs = logits[:, : self.pair_outputs].log_softmax(1)
        else:
            task_log_probs = torch.cat(
                [logits[:, :MASKS].log_softmax(1), logits[:, MASKS : self.pair_outputs].log_softmax(1)], 1
            )
            pair_log_probs = task_log_probs[:, self.task_of_pair].sum(1)
        year_log_probs = logits[:, self.pair_outputs :].log_softmax(1)
        band_log_probs = band_log_probabilities(year_log_probs, self.log_band_of_year, torch.logsumexp)
        class_log_probs = pair_log_probs[:, self.pair_of_class] + band_log_probs[:, self.band_of_class]
        return class_log_probs, year_log_probs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.with_years(images)[0]


class ClassAndYears(torch.nn.Module):
    """An AgeYearsClassifier whose output is its 18-class and years' log-probabilities side by
    side (for training and validation; the model itself keeps the 18-class output)."""

    def __init__(self, model: AgeYearsClassifier):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.model.with_years(images), 1)


class ClassesHead:
    """One 18-way output (`head: single`), trained with the `loss` terms on the 18 classes."""

    name = "single"
    #: the backbone's outputs besides a years head's years: one per (mask, gender) pair
    pair_outputs = NUM_PAIRS

    def __init__(self, loss: Sequence[Mapping] = PLAIN_LOSS, task_losses: Mapping | None = None):
        self.loss_terms, self.task_losses = tuple(loss), dict(task_losses or {})

    @property
    def outputs(self) -> int:
        """The backbone's output width."""
        return NUM_CLASSES

    @property
    def num_targets(self) -> int:
        """The width of a training photo's one-hot target (and of Mixup's)."""
        return NUM_CLASSES

    @property
    def age_cuts(self) -> list[int] | None:
        """The age cuts the head's bands are cut at (a years head's), else None."""
        return None

    def classifier(self, backbone: torch.nn.Module) -> torch.nn.Module:
        """The classifier around `backbone`: its output the 18-class logits or log-probabilities."""
        return backbone

    def training_module(self, classifier: torch.nn.Module) -> torch.nn.Module:
        """What training and validation run: the classifier (a years head's with its years beside)."""
        return classifier

    def targets(self, photos: pd.DataFrame, labels) -> np.ndarray:
        """The training targets of `photos` (their `age` in years), whose 18-class labels are `labels`."""
        return np.asarray(labels)

    def loss(self, labels: torch.Tensor) -> torch.nn.Module:
        """The loss on the training module's log-probabilities; class weights from the counts of
        `labels` (the training fold's 18-class labels)."""
        return CompositeLoss({None: self.loss_terms}, {None: class_counts(labels)})

    def out_of_fold(self, photos: pd.DataFrame, outputs: np.ndarray) -> pd.DataFrame:
        """`photos` with the training module's `outputs` as out-of-fold columns (the 18 logits)."""
        table = photos.copy()
        table[list(LOGIT_COLUMNS)] = outputs[:, :NUM_CLASSES]
        return table

    def checkpoint_meta(self) -> dict:
        """What a checkpoint records of the head, for head_of_checkpoint."""
        return {"head": self.name, "age_cuts": self.age_cuts}

    def cut_at(self, classifier: torch.nn.Module, age_cuts) -> torch.nn.Module:
        """The classifier deciding age bands at `age_cuts` (only a years head has cuts to move)."""
        if age_cuts is not None:
            raise PipelineError(f"age cuts {list(age_cuts)} given for a {self.name} head, which has none")
        return classifier


class TasksHead(ClassesHead):
    """Three outputs, mask 3, gender 2 and age 3 logits (`head: multi`, see ThreeHeadClassifier),
    each task trained with `loss`, or its own terms from `task_losses`."""

    name = "multi"
    pair_outputs = MASKS + GENDERS

    @property
    def outputs(self) -> int:
        return sum(TASK_SIZES.values())

    def classifier(self, backbone: torch.nn.Module) -> torch.nn.Module:
        return ThreeHeadClassifier(backbone)

    def loss(self, labels: torch.Tensor) -> torch.nn.Module:
        counts = class_counts(labels)
        terms: dict[str | None, Sequence[Mapping]] = {
            task: self.task_losses.get(task, self.loss_terms) for task in TASK_SIZES
        }
        task_counts: dict[str | None, torch.Tensor] = {
            task: torch.zeros(size).index_add_(0, torch.from_numpy(TASK_OF_CLASS[task]), counts)
            for task, size in TASK_SIZES.items()
        }
        return CompositeLoss(terms, task_counts)


class YearsHead(ClassesHead):
    """The age in years beside mask and gender (see AgeYearsClassifier): `pairs` (an 18-way or
    task head) gives the mask and gender outputs and the class loss, the years add MAX_AGE + 1
    outputs and a term of `weight` against a Gaussian of `sigma` years (see losses.YearsLoss), and
    the bands are cut at `age_cuts`."""

    def __init__(self, pairs: ClassesHead, age_cuts, sigma: float = 1.0, weight: float = 0.0):
        self.pairs, self.cuts = pairs, list(checked_age_cuts(age_cuts))
        self.name, self.sigma, self.weight = pairs.name, sigma, weight

    @property
    def outputs(self) -> int:
        return self.pairs.pair_outputs + MAX_AGE + 1

    @property
    def num_targets(self) -> int:
        """(year, class) pairs: index year * 18 + class (labels.encode_year_and_class)."""
        return NUM_CLASSES * (MAX_AGE + 1)

    @property
    def age_cuts(self) -> list[int]:
        return self.cuts

    def classifier(self, backbone: torch.nn.Module) -> torch.nn.Module:
        return AgeYearsClassifier(backbone, self.pairs.pair_outputs, self.cuts)

    def training_module(self, classifier: torch.nn.Module) -> torch.nn.Module:
        return ClassAndYears(classifier)  # type: ignore[arg-type]  # built by self.classifier

    def targets(self, photos: pd.DataFrame, labels) -> np.ndarray:
        return encode_year_and_class(photos["age"], labels)

    def loss(self, labels: torch.Tensor) -> torch.nn.Module:
        return YearsLoss(self.pairs.loss(labels), self.sigma, self.weight)

    def out_of_fold(self, photos: pd.DataFrame, outputs: np.ndarray) -> pd.DataFrame:
        """The 18 logits and the years' probabilities (age_p000 ... age_p100)."""
        years = pd.DataFrame(np.exp(outputs[:, NUM_CLASSES:]), columns=list(YEAR_COLUMNS), index=photos.index)
        return pd.concat([self.pairs.out_of_fold(photos, outputs), years], axis=1)

    def cut_at(self, classifier: torch.nn.Module, age_cuts) -> torch.nn.Module:
        if age_cuts is not None:
            classifier.set_age_cuts(age_cuts)  # type: ignore[operator]  # an AgeYearsClassifier
        return classifier


#: the kinds a block's `head` names
HEADS: dict[str, type[ClassesHead]] = {"single": ClassesHead, "multi": TasksHead}


def class_counts(labels: torch.Tensor) -> torch.Tensor:
    """How many of `labels` each of the 18 classes has."""
    return torch.bincount(torch.as_tensor(labels), minlength=NUM_CLASSES).float()


def head_named(name: str) -> ClassesHead:
    """The 18-way (`single`) or task (`multi`) head, with the plain loss."""
    if name not in HEADS:
        raise PipelineError(f"head must be one of {tuple(HEADS)}, not {name!r}")
    return HEADS[name]()


def head_of(block: ModelBlock, age_bins: Sequence[int]) -> ClassesHead:
    """The head a model block trains: `head`'s kind with the block's loss terms, as a years head
    when `age_years.sigma` is set (its bands cut at the block's training cuts, see
    ModelBlock.training_age_cuts: train_age_bins, else the config's `age_bins`)."""
    pairs = HEADS[block.head](block.loss, block.task_losses)
    years = block.age_years
    if years.sigma is None:
        return pairs
    return YearsHead(pairs, block.training_age_cuts(age_bins), years.sigma, years.weight)


def head_of_checkpoint(meta: Mapping) -> ClassesHead:
    """The head a checkpoint's `meta` records (see ClassesHead.checkpoint_meta), to predict with."""
    pairs = head_named(meta["head"])
    cuts = meta.get("age_cuts")
    return pairs if cuts is None else YearsHead(pairs, cuts)
