"""Snakemake job: soft vote of every (model, fold) into submission.csv."""

import pandas as pd

from facemask.ensemble import vote_eval_predictions
from facemask.logs import log, run_job


def main():
    members = [tuple(member.split("/")) for member in snakemake.params.members]
    eval_logits = {(model, int(fold)): pd.read_csv(path, dtype={"ImageID": str})
                   for (model, fold), path in zip(members, snakemake.input.eval_logits)}
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    submission = vote_eval_predictions(eval_logits, snakemake.params.weights, image_ids)
    submission.to_csv(snakemake.output[0], index=False)
    log.info("submission of %d photos from %d members; predicted classes: %s",
             len(submission), len(members), submission["ans"].value_counts().sort_index().to_dict())


run_job(main, snakemake.log[0])
