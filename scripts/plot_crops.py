"""Snakemake job: a contact sheet of the training photos as the first model's image cache holds
them, and of every photo in which the face crop found no face."""

import pandas as pd

from facemask.report.plots import plot_crops
from facemask.utils.logs import run_job


def main():
    crops = pd.read_csv(snakemake.input.crops, dtype={"path": str})
    plot_crops(snakemake.input.cache, crops, snakemake.output[0], seed=snakemake.params.seed)


run_job(main, snakemake.log[0])
