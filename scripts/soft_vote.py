"""Snakemake job: soft vote of every (model, fold) into submission.csv, decided as the ensemble bundle says."""

import numpy as np
import pandas as pd

from facemask.bundle import read_bundle
from facemask.ensemble import check_submission, vote_eval_predictions
from facemask.files import read_member_tables, write_csv
from facemask.logs import log, run_job


def main():
    bundle = read_bundle(snakemake.input.bundle, verify=False)  # its checkpoints are not used here
    eval_logits = read_member_tables(snakemake.params.members, snakemake.input.eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    offsets = None if bundle["class_offsets"] is None else np.asarray(bundle["class_offsets"])
    submission = vote_eval_predictions(eval_logits, bundle["model_weights"], image_ids, offsets=offsets)
    check_submission(submission, image_ids)
    write_csv(submission, snakemake.output[0])
    log.info("submission of %d photos from %d members; predicted classes: %s",
             len(submission), len(eval_logits), submission["ans"].value_counts().sort_index().to_dict())


run_job(main, snakemake.log[0])
