"""Snakemake job: soft vote of every (model, fold) into submission.csv, decided as the ensemble
bundle says."""

import pandas as pd

from facemask.ensemble.bundle import Bundle
from facemask.ensemble.vote import check_submission, vote_probabilities
from facemask.utils.files import read_member_tables, write_csv
from facemask.utils.logs import log, run_job


def main():
    bundle = Bundle.read(snakemake.input.bundle, verify=False)  # its checkpoints are not used here
    eval_logits = read_member_tables(snakemake.params.members, snakemake.input.eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    probabilities = vote_probabilities(eval_logits, bundle.vote, image_ids)
    submission = pd.DataFrame({"ImageID": list(image_ids), "ans": bundle.decide(probabilities)})
    check_submission(submission, image_ids)
    write_csv(submission, snakemake.output[0])
    log.info(
        "submission of %d photos from %d members; predicted classes: %s",
        len(submission),
        len(eval_logits),
        submission["ans"].value_counts().sort_index().to_dict(),
    )


run_job(main, snakemake.log[0])
