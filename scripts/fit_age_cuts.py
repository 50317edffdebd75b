"""Snakemake job: a years head's age cuts, fitted on all its out-of-fold predictions; its predict
jobs apply them."""

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.age_cuts import write_age_cuts
from facemask.ensemble.fit import fit_vote, oof_by_model
from facemask.ensemble.spec import VoteSpec
from facemask.utils.files import Member, read_member_tables
from facemask.utils.logs import log, run_job


def main():
    model = snakemake.wildcards.model
    members = [Member(model, fold) for fold in snakemake.params.folds]
    shares = class_counts_to_match(snakemake.input.train_index, snakemake.params.match_class_shares)
    oof = oof_by_model(read_member_tables(members, snakemake.input.oof_logits))
    cuts = fit_vote(oof, VoteSpec({model: 1.0}, (model,)), shares).age_cuts[model]
    write_age_cuts(cuts, snakemake.output[0])
    log.info(
        "%s: age cuts %s fitted on the out-of-fold predictions of %d folds", model, list(cuts), len(members)
    )


run_job(main, snakemake.log[0])
