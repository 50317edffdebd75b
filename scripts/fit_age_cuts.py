"""Snakemake job: a years head's age cuts, fitted on all its out-of-fold predictions; its predict
jobs apply them."""

from facemask.files import Member, read_member_tables, write_json
from facemask.logs import log, run_job
from facemask.oof_fit import fit_vote, oof_by_model
from facemask.vote import class_shares_to_match


def main():
    model = snakemake.wildcards.model
    members = [Member(model, fold) for fold in snakemake.params.folds]
    shares = class_shares_to_match(snakemake.input.train_index, snakemake.params.match_class_shares)
    cuts = fit_vote(
        oof_by_model(read_member_tables(members, snakemake.input.oof_logits)), shares, {model: 1.0}, [model]
    ).age_cuts[model]
    write_json({"age_cuts": [int(cut) for cut in cuts]}, snakemake.output[0])
    log.info(
        "%s: age cuts %s fitted on the out-of-fold predictions of %d folds", model, list(cuts), len(members)
    )


run_job(main, snakemake.log[0])
