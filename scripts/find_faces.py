"""Snakemake job: find the face of every photo of one side once, for the face crop of every image
cache size (rule prepare_images). MTCNN runs on the `device` setting's device, as train and predict
jobs do: a GPU slot of its own, and a stop with `device: cuda` where torch sees no GPU."""

import pandas as pd

from facemask.data.faces import find_faces
from facemask.utils.cpus import job_threads
from facemask.utils.devices import pick_device
from facemask.utils.files import write_csv
from facemask.utils.gpu_slots import claim_gpu
from facemask.utils.logs import log, run_job


def main():
    claim_gpu()
    paths = pd.read_csv(snakemake.input[0], dtype=str)["path"].to_list()
    device = pick_device(snakemake.params.device).type
    detector = snakemake.params.detector
    faces = find_faces(
        snakemake.params.data_dir, paths, detector, job_threads(snakemake.threads), device=device
    )
    found = faces["detector"] != ""
    log.info(
        "faces found in %d of %d photos (%s), %s on the %s",
        found.sum(),
        len(faces),
        ", ".join(
            f"{count} by {name}" for name, count in faces.loc[found, "detector"].value_counts().items()
        ),
        detector,
        device,
    )
    write_csv(faces, snakemake.output[0])


run_job(main, snakemake.log[0])
