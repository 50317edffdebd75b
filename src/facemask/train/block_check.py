"""Load-time checks of a model block, so that a setting that a train job would fail on, or ignore,
stops the workflow before any job runs, naming the block and the key.

`check_block` first refuses what a look at the settings shows (a loss option that its loss does not
take, `task_losses` of a single head, an odd batch with Mixup / CutMix, an optimizer or scheduler
option that timm's factory would drop or does not take: facemask.train.timm_options, ...), then
builds the block in full with the builder of train jobs (facemask.train.recipe): the timm model of
`arch` with its `model_kwargs` (one that it does not take named with the nearest that it does) and
head on the meta device (no memory, no weights), and the loss, mixing, augmentation, optimizer,
schedule and weight average around a tiny stand-in backbone with the same outputs, and takes one
training step and one schedule epoch on a dummy batch of the block's size.
"""

import contextlib
import inspect
import io

import torch
import torch._dynamo
from torch.overrides import TorchFunctionMode

from facemask.classes.labels import DEFAULT_AGE_BINS, NUM_CLASSES, checked_age_cuts
from facemask.config.blocks import ModelBlock
from facemask.config.schema import unknown_key
from facemask.model.classifier import create_backbone
from facemask.model.heads import head_of
from facemask.model.losses import LOSSES
from facemask.train.epoch import train_one_epoch
from facemask.train.recipe import build_training, dummy_batch, part
from facemask.train.resume import kept_random_state
from facemask.train.timm_options import (
    keyword_names,
    optimizer_problems,
    scheduler_problems,
    unexpected_keyword,
)
from facemask.utils.errors import ConfigError
from facemask.utils.memory import CPU_BATCH_SIZE

#: the side of the dummy photos (the stand-in backbone's input is 3 x SIDE x SIDE)
SIDE = 8
#: the updates per epoch the schedule is built for (a real run's depend on the data set): enough
#: that fractional warm-up and decay epochs come to whole updates
UPDATES_PER_EPOCH = 100
#: in-place ops that change a tensor's shape, which SkipInit runs
SHAPE_CHANGING = frozenset(
    {
        "resize_",
        "resize_as_",
        "set_",
        "as_strided_",
        "squeeze_",
        "unsqueeze_",
        "t_",
        "transpose_",
        "swapdims_",
        "swapaxes_",
    }
)


class SkipInit(TorchFunctionMode):
    """Skip in-place ops on meta tensors (the weight initialisation: there is no data to write),
    which torch otherwise runs through slow Python references; a model builds several times faster."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name, target = getattr(func, "__name__", ""), args[0] if args else kwargs.get("tensor")
        if (
            name.endswith("_")
            and not name.endswith("__")
            and name not in SHAPE_CHANGING
            and isinstance(target, torch.Tensor)
            and target.is_meta
        ):
            return target
        return func(*args, **kwargs)


def loss_options(name: str) -> list[str]:
    """The options (term keys besides name and weight) that the loss `name` takes."""
    parameters = inspect.signature(LOSSES[name]).parameters.values()
    return [parameter.name for parameter in parameters if parameter.default is not parameter.empty]


def loss_terms(block: ModelBlock):
    """The block's loss terms with their keys: ('loss[0]', term), ('task_losses.age[0]', term), ..."""
    yield from ((f"loss[{i}]", term) for i, term in enumerate(block.loss))
    for task, terms in block.task_losses.items():
        yield from ((f"task_losses.{task}[{i}]", term) for i, term in enumerate(terms))


def setting_problems(block: ModelBlock):
    """'key: what is wrong and what to do' of each setting that the block would ignore or fail on,
    as far as the settings themselves show."""
    if block.head == "single" and block.task_losses:
        yield (
            "task_losses: a single head has no tasks, so they would be ignored: "
            "set head: multi, or remove them"
        )
    for key, term in loss_terms(block):
        for option in sorted(set(term) - {"name", "weight"} - set(loss_options(term["name"]))):
            takers = " and ".join(name for name in LOSSES if option in loss_options(name))
            yield (
                f"{key}.{option}: the {term['name']} loss takes no {option} (only {takers}): remove it, "
                "or change the loss"
            )
    if not block.batch_is_auto and block.batch_size % 2 and block.mix.is_on:
        yield (
            f"batch_size: Mixup / CutMix (mix) need an even batch, not {block.batch_size}: "
            "make it even, or set mix.prob to 0"
        )
    if block.early_stopping_patience and block.keep != "best":
        yield (
            "early_stopping_patience: stopping at the best validation F1 needs keep: best "
            f"(it is {block.keep!r}, which keeps the last epoch): set keep: best, or remove it"
        )
    if "num_classes" in block.model_kwargs:
        yield "model_kwargs.num_classes: the head sets the number of outputs: remove it"
    yield from optimizer_problems(block.optimizer)
    yield from scheduler_problems(block.scheduler)
    if block.train_age_bins and not increasing(block.train_age_bins):
        yield f"train_age_bins: {list(block.train_age_bins)} are not two increasing ages: e.g. [30, 58]"
    if isinstance(block.compile, str) and block.compile not in compile_backends():
        yield (
            f"compile: {block.compile!r} is not a torch.compile backend: use true (inductor), "
            "or one of torch._dynamo.list_backends(exclude_tags=()), e.g. aot_eager"
        )


def increasing(age_bins) -> bool:
    """Whether `age_bins` are two increasing ages (labels.checked_age_cuts)."""
    try:
        checked_age_cuts(age_bins)
    except ValueError:
        return False
    return True


def compile_backends() -> set[str]:
    """The backends torch.compile takes by name, the debug ones (aot_eager, eager) included."""
    return {"inductor", *torch._dynamo.list_backends(exclude_tags=())}


def stand_in_backbone(block: ModelBlock):
    """A backbone factory for recipe.build_classifier: timm's `arch` with its `model_kwargs` and
    the head's outputs built on the meta device (no memory, no weights), which checks both, and
    in its place a Flatten + Linear of the same outputs on SIDE x SIDE photos."""

    def backbone(outputs: int) -> torch.nn.Module:
        with torch.device("meta"), SkipInit():
            create_backbone(block.arch, False, outputs, dict(block.model_kwargs))
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIDE * SIDE, outputs))

    return backbone


def misspelt_model_kwarg(block: ModelBlock, error: BaseException | None) -> str | None:
    """'model_kwargs: unknown key ... (did you mean ...?)' when the build of the block's timm model
    failed (`error`) on one of its model_kwargs, with the nearest key that the model's class takes
    (built without them on the meta device, to find it); None for another failure."""
    key = unexpected_keyword(error)
    if key is None or key not in block.model_kwargs:
        return None
    with torch.device("meta"), SkipInit():
        model = create_backbone(block.arch, False, NUM_CLASSES, {})
    return f"model_kwargs: {unknown_key(key, keyword_names(type(model)))}"


def take_one_step(block: ModelBlock, age_bins) -> None:
    """Build the block's training step as a train job does (recipe.build_training) around a
    stand-in backbone (see stand_in_backbone), and take one training step
    (epoch.train_one_epoch) and one schedule epoch on a dummy batch of the block's batch_size
    (auto's on the CPU)."""
    cpu = torch.device("cpu")
    parts = build_training(
        block,
        head_of(block, age_bins),
        cpu,
        torch.arange(NUM_CLASSES),
        UPDATES_PER_EPOCH,
        pretrained=False,
        compile=False,
        image_size=(SIDE, SIDE),
        backbone=stand_in_backbone(block),
    )
    batch_size = CPU_BATCH_SIZE if block.batch_is_auto else int(block.batch_size)
    batch = [dummy_batch(parts.head, batch_size, (SIDE, SIDE, 3), cpu)]
    with part("loss, mix, optimizer or scheduler", "a training step on a dummy batch fails"):
        with contextlib.redirect_stderr(io.StringIO()):  # the step's progress line
            train_one_epoch(parts.step, batch, 1)
        parts.schedule.end_epoch(1, 0.0)


def check_block(name: str, block: ModelBlock, age_bins=DEFAULT_AGE_BINS) -> None:
    """Raise a ConfigError ('config: models.<name>.<key>: <what is wrong and what to do>', one line)
    when the model `block` holds a setting that its train
    job would ignore or fail on (see the module's doc). `age_bins`: the config's age cuts."""
    problem = next(setting_problems(block), None)
    if problem:
        raise ConfigError(f"config: models.{name}.{problem}")
    with kept_random_state():
        try:
            take_one_step(block, age_bins)
        except ConfigError as error:
            problem = misspelt_model_kwarg(block, error.__cause__) or error
            raise ConfigError(f"config: models.{name}.{problem}") from error
