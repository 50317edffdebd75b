"""Snakemake job: the trained ensemble's answers for every photo below a folder (a predict set)."""

from facemask.data.photo_index import DataReport
from facemask.predict.photos import collect_photos, predict_photos, read_checked_bundle
from facemask.utils.cpus import job_threads
from facemask.utils.files import write_csv
from facemask.utils.gpu_slots import claim_gpu
from facemask.utils.logs import log, run_job
from facemask.utils.memory import BatchSetting


def main():
    claim_gpu()
    bundle = read_checked_bundle(snakemake.input.bundle)
    report = DataReport()
    photos = collect_photos([snakemake.params.folder], report)
    if report.ignored_files:
        log.info(
            "ignored %d files that are not photos, e.g. %s",
            len(report.ignored_files),
            report.ignored_files[0],
        )
    memory = BatchSetting(f"predict set {snakemake.wildcards.name}", "tta.batch_size")
    threads = job_threads(snakemake.threads)
    table = predict_photos(bundle, photos, threads, device=snakemake.params.device, memory=memory)
    write_csv(table, snakemake.output[0])
    log.info(
        "%d photos predicted; answers: %s", len(table), table["ans"].value_counts().sort_index().to_dict()
    )


run_job(main, snakemake.log[0])
