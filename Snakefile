# Face mask / gender / age (18 classes):
# folds -> image cache -> train -> TTA predict -> soft vote -> submission; runs tracked in MLflow;
# optionally a second round trained on the eval photos that the first round labels confidently;
# sweeps (config sweeps): variants of a model block trained as jobs, ranked out of fold.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/common_sweeps.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/folds.smk"
include: "workflow/rules/cache.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/pseudo.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/sweep.smk"


onstart:
    if workflow.local_exec:  # the jobs run here, not on a cluster's nodes
        from facemask.utils.devices import warn_if_no_gpu

        warn_if_no_gpu(SETTINGS.device, logger.warning)


rule submission:
    default_target: True
    input:
        get_final_outputs(),


rule predict:
    input:
        get_predictions,


# the sweeps (config sweeps, docs/sweeps.md): sweep_<name> for one, sweep for all
for sweep_name in SETTINGS.sweeps:

    rule:
        name:
            f"sweep_{sweep_name}"
        input:
            get_sweep_targets([sweep_name]),
        localrule: True


rule sweep:
    input:
        lambda wildcards: get_sweep_targets(list(SETTINGS.sweeps)),
    localrule: True
