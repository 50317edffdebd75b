"""Snakemake job: class shares of the training labels and of the submission's answers."""

import pandas as pd

from facemask.logs import run_job
from facemask.plots import plot_class_distribution


def main():
    plot_class_distribution(
        pd.read_csv(snakemake.input.index)["label"],
        pd.read_csv(snakemake.input.submission)["ans"],
        snakemake.output[0],
    )


run_job(main, snakemake.log[0])
