"""Snakemake job: class shares of the training labels and of the submission's answers."""

import pandas as pd

from facemask.report.plots import plot_class_distribution
from facemask.utils.logs import run_job


def main():
    plot_class_distribution(
        pd.read_csv(snakemake.input.index)["label"],
        pd.read_csv(snakemake.input.submission)["ans"],
        snakemake.output[0],
    )


run_job(main, snakemake.log[0])
