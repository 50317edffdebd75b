"""Snakemake job: out-of-fold scores per (model, fold), per model and of the ensemble."""

from facemask.files import read_member_tables, write_csv, write_text
from facemask.logs import log, run_job
from facemask.report import cv_summary
from facemask.vote import class_shares_to_match


def main():
    oof_logits = read_member_tables(snakemake.params.members, snakemake.input.oof_logits)
    histories = read_member_tables(snakemake.params.members, snakemake.input.histories)
    shares = class_shares_to_match(snakemake.input.train_index, snakemake.params.match_class_shares)
    summary = cv_summary(
        oof_logits,
        snakemake.params.weights,
        histories,
        shares,
        snakemake.params.age_cut_models,
        fit_weights=snakemake.params.fit_weights,
        **snakemake.params.vote,
    )
    write_csv(summary, snakemake.output.csv)
    table = summary.to_markdown(index=False, floatfmt=".4f")
    write_text(table + "\n", snakemake.output.markdown)
    log.info("cross-validation scores:\n%s", table)


run_job(main, snakemake.log[0])
