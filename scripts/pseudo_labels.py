"""Snakemake job: the pseudo-label table of the second round (see facemask.ensemble.pseudo_labels):
per fold, the eval photos that the vote of that fold's first-round members labels confidently."""

import pandas as pd

from facemask.ensemble.bundle import Bundle
from facemask.ensemble.pseudo_labels import choose_pseudo_labels
from facemask.utils.files import read_member_tables, write_csv
from facemask.utils.logs import log, run_job


def main():
    params = snakemake.params
    vote = Bundle.read(snakemake.input.bundle, verify=False).vote  # its checkpoints are not used
    eval_logits = read_member_tables(params.members, snakemake.input.eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"].tolist()
    train_photos = pd.read_csv(snakemake.input.train_index, dtype={"person": str})
    labels = choose_pseudo_labels(
        eval_logits, vote, image_ids, train_photos, params.threshold, params.age_bins, params.seed
    )
    write_csv(labels, snakemake.output[0])
    for fold, chosen in labels.groupby("fold"):
        log.info(
            "fold %d: %d of %d eval photos labelled at a vote probability >= %.2f (classes: %s)",
            fold,
            len(chosen),
            len(image_ids),
            params.threshold,
            chosen["label"].value_counts().sort_index().to_dict(),
        )


run_job(main, snakemake.log[0])
