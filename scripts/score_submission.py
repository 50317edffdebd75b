"""Snakemake job: score submission.csv against the known eval answers."""

import pandas as pd

from facemask.files import write_json
from facemask.logs import log, run_job
from facemask.report import score_submission


def main():
    scores = score_submission(pd.read_csv(snakemake.input.submission, dtype={"ImageID": str}),
                              pd.read_csv(snakemake.input.answers, dtype={"ImageID": str}))
    write_json(scores, snakemake.output[0])
    log.info("eval scores: %s", scores)


run_job(main, snakemake.log[0])
