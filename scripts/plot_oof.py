"""Snakemake job: confusion matrix and per-class F1 of the submission's vote out of fold (cross-fitted)."""

from facemask.files import read_member_tables
from facemask.logs import run_job
from facemask.oof_fit import ensemble_oof, oof_by_model
from facemask.plots import plot_class_f1, plot_confusion_matrix
from facemask.vote import class_shares_to_match


def main():
    shares = class_shares_to_match(snakemake.input.train_index, snakemake.params.match_class_shares)
    oof_logits = read_member_tables(snakemake.params.members, snakemake.input.oof_logits)
    oof = ensemble_oof(
        oof_by_model(oof_logits),
        shares,
        weights=None if snakemake.params.fit_weights else snakemake.params.weights,
        cut_models=snakemake.params.age_cut_models,
        **snakemake.params.vote,
    )
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
