"""Snakemake job: soft vote of every (model, fold) into submission.csv, decided as the ensemble
bundle says."""

import pandas as pd

from facemask.bundle import bundle_vote, decide_as_bundle, read_bundle
from facemask.files import read_member_tables, write_csv
from facemask.logs import log, run_job
from facemask.vote import check_submission, vote_probabilities


def main():
    bundle = read_bundle(snakemake.input.bundle, verify=False)  # its checkpoints are not used here
    eval_logits = read_member_tables(snakemake.params.members, snakemake.input.eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    probabilities = vote_probabilities(eval_logits, bundle_vote(bundle), image_ids)
    submission = pd.DataFrame({"ImageID": list(image_ids), "ans": decide_as_bundle(bundle, probabilities)})
    check_submission(submission, image_ids)
    write_csv(submission, snakemake.output[0])
    log.info(
        "submission of %d photos from %d members; predicted classes: %s",
        len(submission),
        len(eval_logits),
        submission["ans"].value_counts().sort_index().to_dict(),
    )


run_job(main, snakemake.log[0])
