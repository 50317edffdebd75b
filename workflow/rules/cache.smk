rule find_faces:
    input:
        index_output("{split}"),
    output:
        faces_output("{split}"),
    log:
        f"{RESULTS}/logs/find_faces/{{split}}.log",
    params:
        data_dir=DATA,
        detector=SETTINGS.cache.crop.detector,
        device=SETTINGS.device,
        code=code_digest("find_faces.py"),
    threads: SETTINGS.threads.prepare
    resources:
        gpu=int(SETTINGS.cache.crop.runs_torch),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/find_faces.py"


rule prepare_images:
    input:
        index=index_output("{split}"),
        faces=get_faces("{split}"),
    output:
        cache=cache_output("{split}.npy"),
        crops=cache_output("{split}_crops.csv"),
        report=cache_output("{split}_report.json"),
    log:
        f"{RESULTS}/logs/prepare_images/{{size}}_{{split}}.log",
    params:
        data_dir=DATA,
        crop=get_crop(),
        code=code_digest("prepare_images.py"),
    threads: SETTINGS.threads.prepare
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/prepare_images.py"
