rule track_results:
    input:
        cv_scores=f"{RESULTS}/cv_scores.csv",
        cv_table=f"{RESULTS}/cv_scores.md",
        eval_scores=get_eval_scores(),
        bundle=bundle_output(RESULTS),
        plots=get_plots(),
    output:
        f"{RESULTS}/tracking/results.json",
    log:
        f"{RESULTS}/logs/track_results.log",
    params:
        tracking=as_config(SETTINGS.tracking),
        recipe=get_recipe(),
        uri_from_environment=os.environ.get("MLFLOW_TRACKING_URI"),
        code=code_digest("track_results.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/track_results.py"
