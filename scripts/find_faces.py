"""Snakemake job: find the face of every photo of one side once, for the face crop of every image
cache size (rule prepare_images)."""

import pandas as pd

from facemask.data.faces import find_faces
from facemask.utils.cpus import job_threads
from facemask.utils.files import write_csv
from facemask.utils.logs import log, run_job


def main():
    paths = pd.read_csv(snakemake.input[0], dtype=str)["path"].to_list()
    threads, gpu = job_threads(snakemake.threads), snakemake.params.device != "cpu"
    faces = find_faces(snakemake.params.data_dir, paths, snakemake.params.detector, threads, gpu=gpu)
    found = faces["detector"] != ""
    log.info(
        "faces found in %d of %d photos (%s)",
        found.sum(),
        len(faces),
        ", ".join(
            f"{count} by {name}" for name, count in faces.loc[found, "detector"].value_counts().items()
        ),
    )
    write_csv(faces, snakemake.output[0])


run_job(main, snakemake.log[0])
