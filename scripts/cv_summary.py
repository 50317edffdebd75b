"""Snakemake job: out-of-fold scores per (model, fold), per model and of the ensemble."""

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.spec import VoteSpec
from facemask.report.scores import cv_summary
from facemask.utils.files import read_member_tables, write_csv, write_text
from facemask.utils.logs import log, run_job


def main():
    oof_logits = read_member_tables(snakemake.params.members, snakemake.input.oof_logits)
    histories = read_member_tables(snakemake.params.members, snakemake.input.histories)
    spec = VoteSpec.from_config(snakemake.params.vote)
    shares = class_counts_to_match(snakemake.input.train_index, spec.match_class_shares)
    summary = cv_summary(oof_logits, spec, histories, shares)
    write_csv(summary, snakemake.output.csv)
    table = summary.to_markdown(index=False, floatfmt=".4f")
    write_text(table + "\n", snakemake.output.markdown)
    log.info("cross-validation scores:\n%s", table)


run_job(main, snakemake.log[0])
