"""Snakemake job: soft vote of every (model, fold) into submission.csv."""

import pandas as pd

from facemask.ensemble import check_submission, fit_vote, oof_by_model, read_class_shares, vote_eval_predictions
from facemask.files import read_member_tables, write_csv
from facemask.logs import log, run_job


def main():
    eval_logits = read_member_tables(snakemake.params.members, snakemake.input.eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    weights = snakemake.params.weights
    shares = read_class_shares(snakemake.input.train_index) if snakemake.params.match_class_shares else None
    if snakemake.params.fit_weights:
        weights = fit_vote(oof_by_model(read_member_tables(snakemake.params.members, snakemake.input.oof_logits)), shares, None,
                           snakemake.params.age_cut_models).weights
        log.info("model weights fitted to the out-of-fold predictions: %s", weights)
    submission = vote_eval_predictions(eval_logits, weights, image_ids, shares)
    check_submission(submission, image_ids)
    write_csv(submission, snakemake.output[0])
    log.info("submission of %d photos from %d members; predicted classes: %s",
             len(submission), len(eval_logits), submission["ans"].value_counts().sort_index().to_dict())


run_job(main, snakemake.log[0])
