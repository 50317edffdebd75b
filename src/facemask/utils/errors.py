"""Errors that the pipeline reports to the user as one clear line, without a traceback."""


class PipelineError(Exception):
    """A problem with the user's data, config or environment, explained in the message."""


class DataError(PipelineError):
    """The data set does not have the competition's layout; the message names the file."""


class WeightsError(PipelineError):
    """Pretrained weights could not be loaded from the hub or the given file."""


class ConfigError(PipelineError):
    """The config breaks the schema, or a model block holds a setting that would fail in its train
    job or be ignored; the message names the key."""


class OutOfMemory(PipelineError):
    """A job ran out of GPU memory; the message names the job, the stage and a setting that fits
    (see facemask.utils.memory)."""
