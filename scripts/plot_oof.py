"""Snakemake job: confusion matrix and per-class F1 of the submission's vote out of fold (cross-fitted)."""

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.fit import ensemble_oof, oof_by_model
from facemask.ensemble.spec import VoteSpec
from facemask.report.plots import plot_class_f1, plot_confusion_matrix
from facemask.utils.files import read_member_tables
from facemask.utils.logs import run_job


def main():
    spec = VoteSpec.from_config(snakemake.params.vote)
    shares = class_counts_to_match(snakemake.input.train_index, spec.match_class_shares)
    oof_logits = read_member_tables(snakemake.params.members, snakemake.input.oof_logits)
    oof = ensemble_oof(oof_by_model(oof_logits), spec, shares)
    plot_confusion_matrix(
        oof["label"],
        oof["predicted"],
        snakemake.output.confusion,
        f"Ensemble, out of fold: {len(oof)} training photos",
    )
    plot_class_f1(
        oof["label"], oof["predicted"], snakemake.output.class_f1, "Ensemble, out of fold: F1 per class"
    )


run_job(main, snakemake.log[0])
