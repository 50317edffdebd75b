rule index_photos:
    input:
        train_csv=f"{DATA}/train/train.csv",
        info_csv=f"{DATA}/eval/info.csv",
    output:
        train=f"{RESULTS}/index/train_photos.csv",
        eval=f"{RESULTS}/index/eval_photos.csv",
    log:
        f"{RESULTS}/logs/index_photos.log",
    params:
        data_dir=get_data_dir,
        age_bins=config["age_bins"],
        code=code_digest("facemask.data"),
    conda:
        "../../envs/facemask.yaml"
    script:
        "../../scripts/index_photos.py"
