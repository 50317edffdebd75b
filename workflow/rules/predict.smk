rule predict:
    input:
        checkpoint=f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt",
        index=f"{RESULTS}/index/eval_photos.csv",
        cache=get_image_cache("eval"),
    output:
        f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv",
    log:
        f"{RESULTS}/logs/predict/{{model}}/fold{{fold}}.log",
    params:
        tta=config["tta"],
        device=config["device"],
        code=code_digest("facemask.inference"),
    threads: config["threads"]["predict"]
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict.py"
