"""Snakemake job: score submission.csv, and each model's own fold vote, against the known eval answers."""

import json

import pandas as pd

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.spec import VoteSpec
from facemask.report.scores import eval_scores_by_model
from facemask.utils.files import read_member_tables, write_csv, write_json, write_text
from facemask.utils.logs import log, run_job


def main():
    answers = pd.read_csv(snakemake.input.answers, dtype={"ImageID": str})
    submission = pd.read_csv(snakemake.input.submission, dtype={"ImageID": str})
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"].tolist()
    eval_logits = read_member_tables(snakemake.params.members, snakemake.input.eval_logits)
    spec = VoteSpec.from_config(snakemake.params.vote)
    shares = class_counts_to_match(snakemake.input.train_index, spec.match_class_shares)
    scores = eval_scores_by_model(eval_logits, image_ids, answers, submission, spec, shares)
    write_json(json.loads(scores.iloc[-1].drop("model").to_json()), snakemake.output.json)  # the ensemble
    write_csv(scores, snakemake.output.csv)
    table = scores.to_markdown(index=False, floatfmt=".4f")
    write_text(table + "\n", snakemake.output.markdown)
    log.info("eval scores:\n%s", table)


run_job(main, snakemake.log[0])
