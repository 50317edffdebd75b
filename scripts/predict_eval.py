"""Snakemake job: TTA logits of one trained (model, fold) for every eval photo."""

import pandas as pd

from facemask.config.sections import TestTimeAugmentation
from facemask.config.typed import typed
from facemask.ensemble.age_cuts import read_age_cuts
from facemask.model.inference import PredictOptions, predict_eval_photos
from facemask.utils.cpus import job_threads
from facemask.utils.files import write_csv
from facemask.utils.gpu_slots import claim_gpu
from facemask.utils.logs import run_job
from facemask.utils.memory import BatchSetting


def main():
    claim_gpu()
    photos = pd.read_csv(snakemake.input.index, dtype=str)
    age_cuts = read_age_cuts(snakemake.input.age_cuts) if snakemake.input.age_cuts else None
    tta = typed(TestTimeAugmentation, snakemake.params.tta)
    job = f"model {snakemake.wildcards.model}, fold {snakemake.wildcards.fold} (eval photos)"
    memory = BatchSetting(job, "tta.batch_size")
    options = PredictOptions(tta, job_threads(snakemake.threads), snakemake.params.device, memory)
    logits = predict_eval_photos(snakemake.input.checkpoint, photos, snakemake.input.cache, options, age_cuts)
    write_csv(logits, snakemake.output[0])


run_job(main, snakemake.log[0])
