"""Mask / gender / age face classification: the library behind the Snakemake workflow."""

from facemask.utils.errors import PipelineError

__all__ = ["PipelineError"]
