"""Snakemake job: decode, crop and resize one side's photos once into the image cache of one size."""

import pandas as pd

from facemask.config.sections import Crop
from facemask.config.typed import typed
from facemask.data.cache import prepare_cache
from facemask.utils.cpus import job_threads
from facemask.utils.files import write_csv, write_json
from facemask.utils.logs import run_job


def main():
    height, width = (int(side) for side in snakemake.wildcards.size.split("x"))
    split = snakemake.wildcards.split
    faces = (
        {split: pd.read_csv(snakemake.input.faces, dtype={"path": str})} if snakemake.input.faces else None
    )
    crops, report = prepare_cache(
        snakemake.params.data_dir,
        {split: pd.read_csv(snakemake.input.index, dtype=str)},
        (height, width),
        {split: snakemake.output.cache},
        typed(Crop, snakemake.params.crop),
        job_threads(snakemake.threads),
        faces,
    )
    write_csv(crops, snakemake.output.crops)
    write_json(report, snakemake.output.report)


run_job(main, snakemake.log[0])
