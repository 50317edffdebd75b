"""Snakemake job: the first and the second (pseudo-labelled) round side by side: out-of-fold scores,
eval scores when the answers are known, and the pseudo photos each fold trained on."""

import pandas as pd

from facemask.report.scores import rounds_table
from facemask.utils.files import write_csv, write_text
from facemask.utils.logs import log, run_job


def main():
    table = rounds_table(
        [pd.read_csv(path) for path in snakemake.input.cv_scores],
        [pd.read_csv(path) for path in snakemake.input.eval_scores],
        pd.read_csv(snakemake.input.labels),
    )
    write_csv(table, snakemake.output.csv)
    markdown = table.to_markdown(index=False, floatfmt=".4f")
    write_text(markdown + "\n", snakemake.output.markdown)
    log.info("the two rounds:\n%s", markdown)


run_job(main, snakemake.log[0])
