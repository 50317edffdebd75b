"""Snakemake job: a years head's age cuts, fitted on all its out-of-fold predictions; its predict jobs apply them."""

from facemask.ensemble import fit_vote, oof_by_model, read_class_shares
from facemask.files import read_member_tables, write_json
from facemask.logs import log, run_job


def main():
    model = snakemake.wildcards.model
    members = [f"{model}/{fold}" for fold in snakemake.params.folds]
    shares = read_class_shares(snakemake.input.train_index) if snakemake.params.match_class_shares else None
    cuts = fit_vote(oof_by_model(read_member_tables(members, snakemake.input.oof_logits)), shares, {model: 1.0}, [model]).age_cuts[model]
    write_json({"age_cuts": [int(cut) for cut in cuts]}, snakemake.output[0])
    log.info("%s: age cuts %s fitted on the out-of-fold predictions of %d folds", model, list(cuts), len(members))


run_job(main, snakemake.log[0])
