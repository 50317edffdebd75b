rule predict:
    input:
        checkpoint=f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt",
        index=f"{RESULTS}/index/eval_photos.csv",
    output:
        f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv",
    log:
        f"{RESULTS}/logs/predict/{{model}}/fold{{fold}}.log",
    params:
        tta=config["tta"],
        data_dir=DATA,
        code=code_digest("facemask.inference"),
    threads: config["threads"]["predict"]
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict.py"
