import ast
import hashlib
from pathlib import Path

from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

if not 0 < config["age_bins"][0] < config["age_bins"][1]:
    raise WorkflowError(f"config: age_bins must be two increasing ages, e.g. [30, 60]; got {config['age_bins']}")

SOURCE_DIR = Path(workflow.basedir) / "src"


def check_model_archs():
    """Stop at load time, before any job runs, when a model block names no timm model."""
    import timm

    unknown = [f"{name} ({block['arch']})" for name, block in config["models"].items() if not timm.is_model(block["arch"])]

    if unknown:
        raise WorkflowError(f"config: not in timm's registry: {', '.join(unknown)}; see timm.list_models()")


check_model_archs()

DATA = config["data_dir"]
RESULTS = config["results_dir"]
DEMO_DIR = "data/demo"
MODELS = config["run_models"] or list(config["models"])
FOLDS = config["folds"]["run"] or list(range(config["folds"]["k"]))
if set(MODELS) - set(config["models"]) or not set(FOLDS) <= set(range(config["folds"]["k"])):
    raise WorkflowError(f"config: run_models {MODELS} must name model blocks, folds.run {FOLDS} folds below k")


wildcard_constraints:
    model="|".join(MODELS),
    fold=r"\d+",
    size=r"\d+x\d+",


def package_modules(module, seen=None):
    """The files of `module` and of every facemask module it imports, directly or not."""
    seen = set() if seen is None else seen
    path = SOURCE_DIR / Path(*module.split(".")).with_suffix(".py")
    if module in seen or not path.is_file():
        return seen
    seen.add(module)
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            if name.split(".")[0] == "facemask":
                package_modules(name, seen)
    return seen


def code_digest(module):
    """A digest of the package code a job runs, as a param: Snakemake does not track the modules
    a script imports, so an edit to them reruns exactly the jobs that import them."""
    digest = hashlib.sha256()
    for name in sorted(package_modules(module)):
        digest.update((SOURCE_DIR / Path(*name.split(".")).with_suffix(".py")).read_bytes())
    return digest.hexdigest()[:16]


def get_data_dir(wildcards, input):
    """The data set's root folder, from its train.csv."""
    return str(Path(input.train_csv).parents[1])


def get_image_cache(split):
    """An input function: the image cache (`split` 'train' or 'eval') at the size of the job's model."""

    def cache_file(wildcards):
        height, width = (round(side * config["cache"]["margin"]) for side in config["models"][wildcards.model]["image_size"])
        return f"{RESULTS}/cache/{height}x{width}/{split}.npy"

    return cache_file


def get_cache_settings():
    """What the image cache's pixels depend on besides their size: the face crop settings."""
    return {key: value for key, value in config["cache"].items() if key != "margin"}


def get_model_settings(wildcards):
    """The model block a train job depends on (all but its ensemble weight)."""
    block = config["models"][wildcards.model]
    return {key: value for key, value in block.items() if key != "ensemble_weight"}


def get_age_cut_models():
    """The years heads whose age cuts are fitted on their out-of-fold predictions (age_years.fit_cuts)."""
    return [model for model in MODELS if config["models"][model]["age_years"]["sigma"] is not None
            and config["models"][model]["age_years"]["fit_cuts"]]


def get_age_cuts(wildcards):
    """A years head's age cuts fitted on its out-of-fold predictions (rule fit_age_cuts), which its
    predict jobs apply; none for other models, which predict at their training cuts."""
    return f"{RESULTS}/train/{wildcards.model}/age_cuts.json" if wildcards.model in get_age_cut_models() else []


def get_ensemble_weights():
    """Each model's weight in the soft vote."""
    return {model: config["models"][model]["ensemble_weight"] for model in MODELS}


def member_files(pattern):
    """`pattern` for every (model, fold) member of the ensemble."""
    return expand(pattern, model=MODELS, fold=FOLDS)


def get_final_outputs():
    """The submission, the CV summary, the plots and, when the eval answers are known, the eval scores."""
    outputs = [f"{RESULTS}/submission.csv", f"{RESULTS}/cv_scores.csv", f"{RESULTS}/plots/class_distribution.png",
               f"{RESULTS}/plots/oof_confusion_matrix.png", f"{RESULTS}/plots/oof_class_f1.png"]
    outputs += expand(f"{RESULTS}/plots/training_curves_{{model}}.png", model=MODELS)
    if config["eval_labels"]:
        outputs.append(f"{RESULTS}/eval_scores.json")
    return outputs
