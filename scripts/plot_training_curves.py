"""Snakemake job: one model's loss and F1 curves, one line per fold."""

import pandas as pd

from facemask.report.plots import plot_training_curves
from facemask.utils.logs import run_job


def main():
    histories = {
        int(fold): pd.read_csv(path)
        for fold, path in zip(snakemake.params.folds, snakemake.input, strict=True)
    }
    plot_training_curves(histories, snakemake.wildcards.model, snakemake.output[0])


run_job(main, snakemake.log[0])
