"""Snakemake job: assign every person to one of k folds, stratified on gender x age band."""

import pandas as pd

from facemask.data.folds import make_folds
from facemask.utils.files import write_csv
from facemask.utils.logs import log, run_job


def main():
    index = pd.read_csv(snakemake.input[0], dtype={"person": str})
    folds = make_folds(index, snakemake.params.k, snakemake.params.seed, snakemake.params.age_bins)
    write_csv(folds, snakemake.output[0])
    log.info("people per fold and stratum:\n%s", pd.crosstab(folds["stratum"], folds["fold"]))


run_job(main, snakemake.log[0])
