"""Snakemake job: out-of-fold scores per (model, fold), per model and of the ensemble."""

import pandas as pd

from facemask.logs import log, run_job
from facemask.report import cv_summary


def main():
    members = [tuple(member.split("/")) for member in snakemake.params.members]
    oof_logits = {(model, int(fold)): pd.read_csv(path, dtype={"person": str})
                  for (model, fold), path in zip(members, snakemake.input)}
    summary = cv_summary(oof_logits, snakemake.params.weights)
    summary.to_csv(snakemake.output.csv, index=False)
    table = summary.to_markdown(index=False, floatfmt=".4f")
    with open(snakemake.output.markdown, "w") as markdown:
        markdown.write(table + "\n")
    log.info("cross-validation scores:\n%s", table)


run_job(main, snakemake.log[0])
