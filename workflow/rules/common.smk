import hashlib
import os
import re
from pathlib import Path

from facemask.config_schema import close_name, validated
from facemask.errors import ConfigError
from facemask.provenance import code_digest as package_code_digest
from facemask.settings import Settings, as_config

try:  # the schema's check, naming each mistake's key; the defaults filled in
    validated(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None

if not 0 < config["age_bins"][0] < config["age_bins"][1]:
    raise WorkflowError(f"config: age_bins: {config['age_bins']} must be two increasing ages, e.g. [30, 60]")

try:
    SETTINGS = Settings.from_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
SOURCE_DIR = Path(workflow.basedir) / "src"


def check_models():
    """Stop at load time, before any job runs, when a model block names no timm model, or holds a
    setting that its train jobs would fail on or ignore (see facemask.checks.check_block). A block
    that passed as it is now is not checked again (facemask.check_cache)."""
    from facemask.check_cache import record_passed, unchecked_blocks

    blocks = {name: block.as_config() for name, block in SETTINGS.models.items()}
    unchecked = unchecked_blocks(blocks, SETTINGS.precision, SETTINGS.age_bins)
    if not unchecked:
        return
    import timm

    from facemask.checks import check_block

    unknown = [
        f"config: models.{name}.arch: {SETTINGS.models[name].arch!r} is not in timm's registry "
        "(see timm.list_models())"
        for name in unchecked
        if not timm.is_model(SETTINGS.models[name].arch)
    ]
    if unknown:
        raise WorkflowError("\n".join(unknown))
    for name in unchecked:
        try:
            check_block(name, SETTINGS.models[name], SETTINGS.age_bins)
        except ConfigError as error:
            raise WorkflowError(str(error)) from None
    record_passed(unchecked, SETTINGS.precision, SETTINGS.age_bins)


check_models()

DATA = SETTINGS.data_dir
RESULTS = SETTINGS.results_dir
DEMO_DIR = "data/demo"
MODELS = SETTINGS.chosen_models
FOLDS = SETTINGS.folds.chosen
PSEUDO = f"{RESULTS}/pseudo"  # the second round's results (config pseudo_labels)
PSEUDO_MODELS = SETTINGS.pseudo_models
PREDICT_SETS = dict(SETTINGS.predict_sets)
if SETTINGS.predict_dir:
    predict_dir_name = Path(SETTINGS.predict_dir).resolve().name
    taken = PREDICT_SETS.get(predict_dir_name)
    if taken is not None and Path(taken).resolve() != Path(SETTINGS.predict_dir).resolve():
        raise WorkflowError(
            f"config: predict_dir {SETTINGS.predict_dir!r} would be the predict set {predict_dir_name!r} "
            f"(its folder's name), which predict_sets already gives to {taken!r}: give it a name of its own "
            f"under predict_sets, e.g. predict_sets: {{{predict_dir_name}_2: {SETTINGS.predict_dir}}}"
        )
    PREDICT_SETS[predict_dir_name] = SETTINGS.predict_dir
if DATA != DEMO_DIR and not Path(DATA, "train", "train.csv").is_file():
    raise WorkflowError(
        f"no data set at data_dir {DATA!r} (no train/train.csv): put the competition data there "
        "(README, 'The real run') or set data_dir; or run the demo: "
        "snakemake submission --cores 2 --configfile config/demo.yaml"
    )


def check_run_selection():
    """Stop when run_models names a block that the config lacks, or folds.run a fold at or above k."""
    blocks, k = list(SETTINGS.models), SETTINGS.folds.k
    for name in MODELS:
        if name not in blocks:
            hint = f"the blocks: {', '.join(blocks)}; {close_name(name, blocks)}".removesuffix("; ")
            raise WorkflowError(f"config: run_models: {name!r} is not a model block ({hint})")
    for fold in FOLDS:
        if fold >= k:
            raise WorkflowError(f"config: folds.run: {fold} is not a fold below folds.k {k} (0 to {k - 1})")
    for name in PSEUDO_MODELS:
        if name not in MODELS:
            raise WorkflowError(
                f"config: pseudo_labels.models: {name!r} is not a block that is run (run: {', '.join(MODELS)})"
            )


check_run_selection()


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
    pseudo_labels,
    ensemble_bundle_pseudo,
    soft_vote_pseudo,
    cv_summary_pseudo,
    score_submission_pseudo,
    compare_rounds,
    plot_training_curves,
    plot_oof,
    plot_class_distribution,
    plot_crops,
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
        height, width = SETTINGS.cache.size(SETTINGS.models[wildcards.model].image_size)
        return f"{RESULTS}/cache/{height}x{width}/{split}.npy"

    return cache_file


def get_first_cache(name):
    """The file `name` of the training side's image cache at the first model's input size (what
    the contact sheet of crops shows)."""
    height, width = SETTINGS.cache.size(SETTINGS.models[MODELS[0]].image_size)
    return f"{RESULTS}/cache/{height}x{width}/{name}"


def get_faces(split):
    """The faces found in `split`'s photos (rule find_faces) when the image cache crops to the face,
    else nothing."""
    return f"{RESULTS}/faces/{split}.csv" if SETTINGS.cache.face_crop else []


def get_cache_settings():
    """What the image cache's pixels depend on besides their size: the face crop settings (the
    detector only with the crop on)."""
    return SETTINGS.cache.pixel_settings


def get_model_settings(wildcards):
    """The model block a train job depends on (all but its ensemble weight), its precision
    the global one when it sets none."""
    return SETTINGS.models[wildcards.model].as_config()


def get_recipe():
    """The model blocks run, each as its train jobs get it (see get_model_settings): the tracking
    parent run's params."""
    return {model: SETTINGS.models[model].as_config() for model in MODELS}


def get_age_cut_models(models=None):
    """The years heads whose age cuts are fitted on their out-of-fold predictions (age_years.fit_cuts),
    of `models` (default: the blocks run)."""
    return [model for model in models or MODELS if SETTINGS.models[model].age_years.fit_cuts]


def get_age_cuts_of(results=RESULTS):
    """An input function: a years head's age cuts fitted on its out-of-fold predictions (rule
    fit_age_cuts) in the round of `results`, which its predict jobs apply; none for other models,
    which predict at their training cuts."""

    def age_cuts(wildcards):
        return age_cuts_output(wildcards.model, results) if wildcards.model in get_age_cut_models() else []

    return age_cuts


def get_all_age_cuts(models=None, results=RESULTS):
    """The fitted age cuts of every voted years head that fits them (age_years.fit_cuts), in the
    order of get_age_cut_models(models)."""
    return [age_cuts_output(model, results) for model in get_age_cut_models(models)]


def get_ensemble_weights(models=None):
    """Each model's weight in the soft vote (of `models`, default: the blocks run)."""
    return {model: SETTINGS.ensemble_weights[model] for model in models or MODELS}


def train_output(name, results=RESULTS):
    """A train job's output `name` (checkpoint.pt, oof_logits.csv, history.csv), with the {model}
    and {fold} wildcards left in; under PSEUDO for the second round."""
    return f"{results}/train/{{model}}/fold{{fold}}/{name}"


def predict_output(name, results=RESULTS):
    """A predict_eval job's output `name` (eval_logits.csv), with the {model} and {fold} wildcards
    left in; under PSEUDO for the second round."""
    return f"{results}/predict/{{model}}/fold{{fold}}/{name}"


def index_output(split):
    """The photo index of `split`: 'train', 'eval', or the wildcard '{split}'."""
    return f"{RESULTS}/index/{split}_photos.csv"


def age_cuts_output(model="{model}", results=RESULTS):
    """A years head's age cuts fitted by rule fit_age_cuts (the {model} wildcard left in by default)."""
    return f"{results}/train/{model}/age_cuts.json"


def get_members(models=None):
    """Every (model, fold) member of the ensemble (of `models`, default: the blocks run) as a
    [model, fold] pair, in the order of member_files: params hold plain data, and the jobs read
    the pairs back as facemask.files.Member."""
    return [[model, fold] for model in models or MODELS for fold in FOLDS]


def member_files(pattern, models=None):
    """`pattern` (a train_output or predict_output) for every member, in the order of
    get_members(models)."""
    members = get_members(models)
    return expand(pattern, zip, model=[model for model, _ in members], fold=[fold for _, fold in members])


def get_plots():
    """The run's plots: class shares, out-of-fold confusion and class F1, each model's curves."""
    plots = ["class_distribution", "oof_confusion_matrix", "oof_class_f1", "crops"]
    plots += expand("training_curves_{model}", model=MODELS)
    return [f"{RESULTS}/plots/{plot}.png" for plot in plots]


def get_eval_scores():
    """The eval scores (per model and of the ensemble) when the eval answers are known, else none."""
    return [f"{RESULTS}/eval_scores.csv"] if SETTINGS.eval_labels else []


def get_final_outputs():
    """The submission, the CV summary, the plots, the eval scores when the eval answers are known,
    and, with tracking on, the results logged to the tracking parent run."""
    outputs = [f"{RESULTS}/submission.csv", f"{RESULTS}/cv_scores.csv", *get_plots(), *get_eval_scores()]
    if SETTINGS.tracking.on:
        outputs.append(f"{RESULTS}/tracking/results.json")
    if PSEUDO_MODELS:
        outputs += [f"{PSEUDO}/submission.csv", f"{PSEUDO}/rounds.md"]
    return outputs
