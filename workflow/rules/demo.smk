rule demo_data:
    output:
        train_csv=f"{DEMO_DIR}/train/train.csv",
        info_csv=f"{DEMO_DIR}/eval/info.csv",
        labels_csv=f"{DEMO_DIR}/eval/labels.csv",
    log:
        f"{DEMO_DIR}/demo_data.log",
    params:
        demo=as_config(SETTINGS.demo),
        code=code_digest("make_demo_data.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/make_demo_data.py"
