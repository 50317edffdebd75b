"""Snakemake job: check one side of the data set and index its photos (`split` train: the training
photos with their labels; eval: the eval photos in info.csv order); write what the check found."""

from facemask.data.photo_index import DataReport, index_eval_photos, index_train_photos
from facemask.utils.files import write_csv, write_json
from facemask.utils.logs import log, run_job


def main():
    report = DataReport()
    if snakemake.wildcards.split == "train":
        photos = index_train_photos(
            snakemake.params.data_dir,
            snakemake.params.age_bins,
            report,
            skip_unreadable=snakemake.params.skip_unreadable_photos,
            min_side=snakemake.params.min_photo_side,
        )
        log.info("training photos per class: %s", photos["label"].value_counts().sort_index().to_dict())
    else:
        photos = index_eval_photos(
            snakemake.params.data_dir, report, min_side=snakemake.params.min_photo_side
        )
    write_json(report.to_dict(), snakemake.output.report)
    write_csv(photos, snakemake.output.photos)
    summary = {
        key: value["count"] if isinstance(value, dict) and "count" in value else value
        for key, value in report.to_dict().items()
    }
    log.info("data check (%s): %s", snakemake.wildcards.split, summary)


run_job(main, snakemake.log[0])
