import hashlib
import os
import re
from pathlib import Path

from facemask.config.consistency import DEMO_DIR, check_data_dir, checked_settings, predict_sets
from facemask.config.schema import validated
from facemask.config.typed import as_config
from facemask.ensemble.bundle import BUNDLE_NAME
from facemask.ensemble.spec import VoteSpec
from facemask.train.passed_checks import check_blocks
from facemask.utils.errors import ConfigError
from facemask.utils.provenance import code_digest as package_code_digest

try:  # the schema's check, naming each mistake's key, the defaults filled in; the rules across keys
    validated(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
    SETTINGS = checked_settings(config)
    PREDICT_SETS = predict_sets(SETTINGS)
    check_blocks(SETTINGS)  # each model block built once, before any job runs (verdicts kept)
    check_data_dir(SETTINGS)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

SOURCE_DIR = Path(workflow.basedir) / "src"
DATA = SETTINGS.data_dir
RESULTS = SETTINGS.results_dir
MODELS = SETTINGS.chosen_models
FOLDS = SETTINGS.folds.chosen
PSEUDO = f"{RESULTS}/pseudo"  # the second round's results (config pseudo_labels)
PSEUDO_MODELS = SETTINGS.pseudo_models


wildcard_constraints:
    model="|".join(SETTINGS.models),  # the blocks run, the others, the sweeps' variants
    fold=r"\d+",
    size=r"\d+x\d+",
    split="train|eval",
    results=f"{re.escape(RESULTS)}|{re.escape(PSEUDO)}",
    name="|".join(re.escape(name) for name in PREDICT_SETS) or "no-predict-set",
    sweep="|".join(SETTINGS.sweeps) or "no-sweep",
    rung=r"\d+",


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
        return cache_output(f"{split}.npy", f"{height}x{width}")

    return cache_file


def get_first_cache(name):
    """The file `name` of the training side's image cache at the first model's input size (what
    the contact sheet of crops shows)."""
    height, width = SETTINGS.cache.size(SETTINGS.models[MODELS[0]].image_size)
    return cache_output(name, f"{height}x{width}")


def faces_output(split):
    """The faces found in `split`'s photos (rule find_faces), in a folder of what finds them."""
    return f"{RESULTS}/faces/{SETTINGS.face_finder}/{split}.csv"


def get_faces(split):
    """The faces found in `split`'s photos when the image cache crops to the face, else nothing."""
    return faces_output(split) if SETTINGS.cache.crop.kind == "face" else []


def get_crop():
    """The crop the image cache's pixels depend on besides their size, as plain data (a face crop's
    scale and detector only with a face crop: sections.Crop.pixel_form)."""
    return as_config(SETTINGS.cache.crop.pixel_form)


def get_model_settings(wildcards):
    """The model block a train job depends on (all but its eval-side keys, blocks.EVAL_SIDE_KEYS),
    its precision the global one when it sets none."""
    return SETTINGS.models[wildcards.model].as_config()


def get_recipe():
    """The model blocks run, each as its train jobs get it (see get_model_settings): the tracking
    parent run's params."""
    return {model: SETTINGS.models[model].as_config() for model in MODELS}


def round_models(wildcards):
    """The model blocks of a job's round: the second round's (pseudo_labels.models) under PSEUDO,
    else (also for a rule of the first round alone, without {results}) the blocks run."""
    return PSEUDO_MODELS if wildcards.get("results") == PSEUDO else MODELS


def round_of(wildcards):
    """A job's round, as its param: 'pseudo' under PSEUDO (trained on pseudo-labelled eval photos
    too), else 'first'."""
    return "pseudo" if wildcards.results == PSEUDO else "first"


def get_age_cut_models(models=None):
    """The years heads whose age cuts are fitted on their out-of-fold predictions (age_years.fit_cuts),
    of `models` (default: the blocks run)."""
    return [model for model in models or MODELS if model in SETTINGS.age_cut_models]


def get_age_cuts(wildcards):
    """A years head's age cuts fitted on its round's out-of-fold predictions (rule fit_age_cuts),
    which its predict jobs apply; none for other models, which predict at their training cuts."""
    fitted = wildcards.model in SETTINGS.age_cut_models
    return age_cuts_output(wildcards.model, wildcards.results) if fitted else []


def get_round_age_cuts(wildcards):
    """The fitted age cuts of every years head of a job's round that fits them, in the order of
    get_age_cut_models."""
    models = get_age_cut_models(round_models(wildcards))
    return [age_cuts_output(model, wildcards.results) for model in models]


def get_ensemble_weights(models=None):
    """Each model's weight in the soft vote (of `models`, default: the blocks run)."""
    return {model: SETTINGS.ensemble_weights[model] for model in models or MODELS}


def get_vote(wildcards):
    """The vote of a job's round as one param (facemask's VoteSpec as plain data): the model
    weights, the years heads whose cuts are fitted, and the ensemble settings."""
    models = round_models(wildcards)
    return VoteSpec.of(SETTINGS, models, get_age_cut_models(models)).as_config()


def get_pseudo_inputs(wildcards):
    """What a second-round train job reads besides a first-round one: the pseudo labels, and the
    eval photos' index and image cache; nothing in the first round."""
    if wildcards.results != PSEUDO:
        return {}
    return {
        "pseudo_labels": f"{PSEUDO}/labels.csv",
        "eval_index": index_output("eval"),
        "eval_cache": get_image_cache("eval")(wildcards),
    }


def train_output(name, results="{results}"):
    """A train job's output `name` (checkpoint.pt, oof_logits.csv, history.csv), with the {model}
    and {fold} wildcards left in; in the round of `results` (RESULTS, PSEUDO, or the wildcard)."""
    return f"{results}/train/{{model}}/fold{{fold}}/{name}"


def predict_output(name, results="{results}"):
    """A predict_eval job's output `name` (eval_logits.csv), with the {model} and {fold} wildcards
    left in; in the round of `results` (RESULTS, PSEUDO, or the wildcard)."""
    return f"{results}/predict/{{model}}/fold{{fold}}/{name}"


def cache_output(name, size="{size}"):
    """The image cache's file `name` at `size` (`<height>x<width>`, or the wildcard)."""
    return f"{RESULTS}/cache/{size}/{name}"


def train_benchmark(results="{results}"):
    """A train job's benchmark file (its time and memory), with the {model} and {fold} wildcards
    left in; in the round of `results` (RESULTS, PSEUDO, or the wildcard)."""
    return f"{results}/benchmarks/train/{{model}}/fold{{fold}}.tsv"


def bundle_output(results="{results}"):
    """The ensemble bundle of the round of `results` (RESULTS, PSEUDO, or the wildcard)."""
    return f"{results}/{BUNDLE_NAME}"


def index_output(split):
    """The photo index of `split`: 'train', 'eval', or the wildcard '{split}'."""
    return f"{RESULTS}/index/{split}_photos.csv"


def age_cuts_output(model="{model}", results="{results}"):
    """A years head's age cuts fitted by rule fit_age_cuts (the wildcards left in by default)."""
    return f"{results}/train/{model}/age_cuts.json"


def get_members(models=None):
    """Every (model, fold) member of the ensemble (of `models`, default: the blocks run) as a
    [model, fold] pair, in the order of member_files: params hold plain data, and the jobs read
    the pairs back as facemask.utils.files.Member."""
    return [[model, fold] for model in models or MODELS for fold in FOLDS]


def get_round_members(wildcards):
    """Every member of a job's round (see get_members)."""
    return get_members(round_models(wildcards))


def files_of(pattern, members):
    """`pattern` (with {model} and {fold}) for each (model, fold) of `members`, in their order."""
    return expand(pattern, zip, model=[model for model, _ in members], fold=[fold for _, fold in members])


def member_files(pattern, models=None):
    """`pattern` (a train_output or predict_output of a round) for every member, in the order of
    get_members(models)."""
    return files_of(pattern, get_members(models))


def round_files(output, name):
    """An input function: `output(name)` (train_output or predict_output) of every member of a
    job's round, in the order of get_round_members."""
    return lambda wildcards: member_files(output(name, wildcards.results), round_models(wildcards))


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
