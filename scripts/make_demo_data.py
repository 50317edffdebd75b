"""Snakemake job: generate the demo data set in the competition layout."""

import shutil
from pathlib import Path

from facemask.data.demo import make_demo_data
from facemask.utils.logs import log, run_job


def main():
    out_dir = Path(snakemake.output.train_csv).parents[1]
    for part in ("train", "eval"):
        shutil.rmtree(out_dir / part, ignore_errors=True)
    make_demo_data(out_dir, **snakemake.params.demo)
    log.info("demo data written to %s: %s", out_dir, snakemake.params.demo)


run_job(main, snakemake.log[0])
