import hashlib
import os
import re
from pathlib import Path

from snakemake.utils import validate

from facemask.provenance import code_digest as package_code_digest

validate(config, "../schemas/config.schema.yaml")

if not 0 < config["age_bins"][0] < config["age_bins"][1]:
    raise WorkflowError(
        f"config: age_bins must be two increasing ages, e.g. [30, 60]; got {config['age_bins']}"
    )

SOURCE_DIR = Path(workflow.basedir) / "src"


def check_models():
    """Stop at load time, before any job runs, when a model block names no timm model, or holds a
    setting that its train jobs would fail on or ignore (see facemask.checks.check_block). A block
    that passed as it is now is not checked again (facemask.check_cache)."""
    from facemask.check_cache import record_passed, unchecked_blocks

    blocks = unchecked_blocks(config["models"], config["precision"], config["age_bins"])
    if not blocks:
        return
    import timm

    from facemask.checks import check_block
    from facemask.errors import ConfigError
    from facemask.settings import ModelBlock

    unknown = [
        f"{name} ({block['arch']})" for name, block in blocks.items() if not timm.is_model(block["arch"])
    ]
    if unknown:
        raise WorkflowError(f"config: not in timm's registry: {', '.join(unknown)}; see timm.list_models()")
    for name, block in blocks.items():
        try:
            check_block(name, ModelBlock.from_config(block, config["precision"]), config["age_bins"])
        except ConfigError as error:
            raise WorkflowError(str(error)) from None
    record_passed(blocks, config["precision"], config["age_bins"])


check_models()

DATA = config["data_dir"]
RESULTS = config["results_dir"]
DEMO_DIR = "data/demo"
MODELS = config["run_models"] or list(config["models"])
FOLDS = config["folds"]["run"] or list(range(config["folds"]["k"]))
PREDICT_SETS = dict(config["predict_sets"])
if config["predict_dir"]:
    predict_dir_name = Path(config["predict_dir"]).resolve().name
    taken = PREDICT_SETS.get(predict_dir_name)
    if taken is not None and Path(taken).resolve() != Path(config["predict_dir"]).resolve():
        raise WorkflowError(
            f"config: predict_dir {config['predict_dir']!r} would be the predict set {predict_dir_name!r} "
            f"(its folder's name), which predict_sets already gives to {taken!r}: give it a name of its own "
            f"under predict_sets, e.g. predict_sets: {{{predict_dir_name}_2: {config['predict_dir']}}}"
        )
    PREDICT_SETS[predict_dir_name] = config["predict_dir"]
if DATA != DEMO_DIR and not Path(DATA, "train", "train.csv").is_file():
    raise WorkflowError(
        f"no data set at data_dir {DATA!r} (no train/train.csv): put the competition data there "
        "(README, 'The real run') or set data_dir; or run the demo: "
        "snakemake submission --cores 2 --configfile config/demo.yaml"
    )
if set(MODELS) - set(config["models"]) or not set(FOLDS) <= set(range(config["folds"]["k"])):
    raise WorkflowError(
        f"config: run_models {MODELS} must name model blocks, folds.run {FOLDS} folds below k"
    )


wildcard_constraints:
    model="|".join(MODELS),
    fold=r"\d+",
    size=r"\d+x\d+",
    split="train|eval",
    name="|".join(re.escape(name) for name in PREDICT_SETS) or "no-predict-set",


localrules:
    demo_data,
    index_photos,
    make_folds,
    ensemble_bundle,
    soft_vote,
    cv_summary,
    plot_training_curves,
    plot_oof,
    plot_class_distribution,
    score_submission,


def code_digest(script):
    """A digest of what `scripts/<script>` and the package code it reaches do, as a param:
    Snakemake does not track the modules a script imports, so an edit that can change a result
    reruns exactly the jobs whose scripts reach it (a comment or docstring edit reruns none)."""
    return package_code_digest(Path(workflow.basedir) / "scripts" / script, SOURCE_DIR)


def listing_digest(files):
    """A digest of the names, sizes and modification times of `files`, as a param: adding,
    removing or replacing one reruns the job, whatever its date."""
    digest = hashlib.sha256()
    for file in sorted(files):
        status = file.stat()
        digest.update(f"{file.as_posix()}\t{status.st_size}\t{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def get_photo_listing(wildcards):
    """The digest of the files of a split's photo folders (train: the person folders; eval: the
    flat folder)."""
    images = Path(DATA) / wildcards.split / "images"
    pattern = "*/*" if wildcards.split == "train" else "*"
    return listing_digest(f for f in images.glob(pattern) if f.is_file())


def get_index_input(wildcards):
    """What a split's index job reads: train.csv or info.csv."""
    return f"{DATA}/train/train.csv" if wildcards.split == "train" else f"{DATA}/eval/info.csv"


def get_predict_set_folder(wildcards):
    """The folder of photos of a predict set (config predict_sets, or predict_dir)."""
    return PREDICT_SETS[wildcards.name]


def get_predict_set_listing(wildcards):
    """The digest of every file below a predict set's folder."""
    return listing_digest(f for f in Path(PREDICT_SETS[wildcards.name]).rglob("*") if f.is_file())


def get_predictions(wildcards):
    """The predictions of every predict set, or a clear error when none is configured."""
    if not PREDICT_SETS:
        raise WorkflowError(
            "no photos to predict: give a folder with --config predict_dir=DIR, or name folders "
            "under predict_sets in the config"
        )
    return expand(f"{RESULTS}/predictions/{{name}}/predictions.csv", name=list(PREDICT_SETS))


def get_image_cache(split):
    """An input function: the image cache (`split` 'train' or 'eval') at the size of the job's model."""

    def cache_file(wildcards):
        height, width = (
            round(side * config["cache"]["margin"])
            for side in config["models"][wildcards.model]["image_size"]
        )
        return f"{RESULTS}/cache/{height}x{width}/{split}.npy"

    return cache_file


def get_cache_env():
    """The image cache's conda environment: MTCNN's face crop runs torch, which the CPU one lacks."""
    crop = config["cache"]["face_crop"] and config["cache"]["face_detector"] == "mtcnn"
    return "../../envs/gpu.yaml" if crop else "../../envs/cpu.yaml"


def get_cache_settings():
    """What the image cache's pixels depend on besides their size: the face crop settings (the
    detector only with the crop on)."""
    ignored = {"margin"} | ({"face_detector"} if not config["cache"]["face_crop"] else set())
    return {key: value for key, value in config["cache"].items() if key not in ignored}


def get_model_settings(wildcards):
    """The model block a train job depends on (all but its ensemble weight), its precision
    the global one when it sets none."""
    block = config["models"][wildcards.model]
    settings = {key: value for key, value in block.items() if key != "ensemble_weight"}
    return settings | {"precision": block["precision"] or config["precision"]}


def get_age_cut_models():
    """The years heads whose age cuts are fitted on their out-of-fold predictions (age_years.fit_cuts)."""
    return [
        model
        for model in MODELS
        if config["models"][model]["age_years"]["sigma"] is not None
        and config["models"][model]["age_years"]["fit_cuts"]
    ]


def get_age_cuts(wildcards):
    """A years head's age cuts fitted on its out-of-fold predictions (rule fit_age_cuts), which its
    predict jobs apply; none for other models, which predict at their training cuts."""
    return age_cuts_output(wildcards.model) if wildcards.model in get_age_cut_models() else []


def get_all_age_cuts():
    """The fitted age cuts of every voted years head that fits them (age_years.fit_cuts), in the
    order of get_age_cut_models()."""
    return [age_cuts_output(model) for model in get_age_cut_models()]


def get_ensemble_weights():
    """Each model's weight in the soft vote."""
    return {model: config["models"][model]["ensemble_weight"] for model in MODELS}


def train_output(name):
    """A train job's output `name` (checkpoint.pt, oof_logits.csv, history.csv), with the {model}
    and {fold} wildcards left in."""
    return f"{RESULTS}/train/{{model}}/fold{{fold}}/{name}"


def predict_output(name):
    """A predict_eval job's output `name` (eval_logits.csv), with the {model} and {fold} wildcards
    left in."""
    return f"{RESULTS}/predict/{{model}}/fold{{fold}}/{name}"


def index_output(split):
    """The photo index of `split`: 'train', 'eval', or the wildcard '{split}'."""
    return f"{RESULTS}/index/{split}_photos.csv"


def age_cuts_output(model="{model}"):
    """A years head's age cuts fitted by rule fit_age_cuts (the {model} wildcard left in by default)."""
    return f"{RESULTS}/train/{model}/age_cuts.json"


def get_members():
    """Every (model, fold) member of the ensemble as a [model, fold] pair, in the order of
    member_files: params hold plain data, and the jobs read the pairs back as facemask.files.Member."""
    return [[model, fold] for model in MODELS for fold in FOLDS]


def member_files(pattern):
    """`pattern` (a train_output or predict_output) for every member, in the order of get_members()."""
    members = get_members()
    return expand(pattern, zip, model=[model for model, _ in members], fold=[fold for _, fold in members])


def get_plots():
    """The run's plots: class shares, out-of-fold confusion and class F1, each model's curves."""
    plots = ["class_distribution", "oof_confusion_matrix", "oof_class_f1"]
    plots += expand("training_curves_{model}", model=MODELS)
    return [f"{RESULTS}/plots/{plot}.png" for plot in plots]


def get_eval_scores():
    """The eval scores (per model and of the ensemble) when the eval answers are known, else none."""
    return [f"{RESULTS}/eval_scores.csv"] if config["eval_labels"] else []


def get_final_outputs():
    """The submission, the CV summary, the plots, the eval scores when the eval answers are known,
    and, with tracking on, the results logged to the tracking parent run."""
    outputs = [f"{RESULTS}/submission.csv", f"{RESULTS}/cv_scores.csv", *get_plots(), *get_eval_scores()]
    if config["tracking"] is not False:
        outputs.append(f"{RESULTS}/tracking/results.json")
    return outputs
