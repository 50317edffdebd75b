"""Snakemake job: index the training photos (with their labels) and the eval photos."""

from facemask.data import index_eval_photos, index_train_photos
from facemask.logs import log, run_job


def main():
    train = index_train_photos(snakemake.params.data_dir, snakemake.params.age_bins)
    evaluation = index_eval_photos(snakemake.params.data_dir)
    train.to_csv(snakemake.output.train, index=False)
    evaluation.to_csv(snakemake.output.eval, index=False)
    log.info("%d training photos of %d people, %d eval photos; classes: %s",
             len(train), train["person"].nunique(), len(evaluation), train["label"].value_counts().sort_index().to_dict())


run_job(main, snakemake.log[0])
