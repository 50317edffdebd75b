"""The vote's options on a finished run, without training: for each option (the models voted,
ensemble.fit_weights, ensemble.combine, ensemble.temperature) its out-of-fold scores, cross-fitted
as cv_summary scores them, and its eval scores, voted and decided as the ensemble bundle does;
with person-bootstrap 95 % intervals of each gain over the first option (the plain equal-weight
vote of all the run's models). The out-of-fold macro F1 picks: the eval columns are for the report.
First, from the histories, what `keep: best` would have chosen instead of each job's last epoch.

    python scripts/benchmarks/vote_options.py results/utkmask-vote \\
        ../shared/data/utkmask-dev/eval/labels.csv [--models A B ...] [--pair A B]

--pair A B adds the vote of A and B alone, equal weights (e.g. one job's averaged weights and
the raw weights of its twin without ema, which trains the same raw weights)."""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.classes.decision import class_counts_to_match, class_share_offsets, log_probabilities
from facemask.classes.scores import F1_SCORES, person_bootstrap_gains, task_scores
from facemask.ensemble.fit import ensemble_oof, fit_vote, oof_by_model
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import vote_probabilities
from facemask.utils.files import read_run_tables

#: the options measured, by name: VoteSpec fields besides the (equal) weights
OPTIONS = {
    "equal weights (mean)": {},
    "fitted weights": {"fit_weights": True},
    "temperatures, equal weights": {"temperature": True},
    "temperatures, fitted weights": {"fit_weights": True, "temperature": True},
    "weights per task (tasks)": {"fit_weights": True, "combine": "tasks"},
    "weights per task, temperatures": {"fit_weights": True, "combine": "tasks", "temperature": True},
    "stacked logistic regression (stack)": {"combine": "stack"},
}
#: where a run keeps its members' out-of-fold and eval logits
RUN_TABLES = (("train", "oof_logits.csv"), ("predict", "eval_logits.csv"))


def run_tables(results: Path, models: list[str] | None):
    """The run's out-of-fold and eval logit tables by Member, of `models` (all when None)."""
    tables = [read_run_tables(results, f"{stage}/*/fold*/{name}") for stage, name in RUN_TABLES]
    return tuple(tables if models is None else (of_models(found, models) for found in tables))


def option_answers(oof, eval_logits, image_ids, shares, fit: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The out-of-fold answers (cross-fitted) and the eval classes of one option."""
    by_model = oof_by_model(oof)
    spec = VoteSpec(dict.fromkeys(by_model, 1.0), **fit)
    answers = ensemble_oof(by_model, spec, shares)
    vote = fit_vote(by_model, spec, shares).vote
    log_p = log_probabilities(vote_probabilities(eval_logits, vote, image_ids))
    return answers, (log_p + class_share_offsets(log_p, shares)).argmax(axis=1)


def bootstrap(truth, new, old, person, resamples: int) -> dict[str, tuple[float, float]]:
    """95 % intervals of the gain in each score, resampling people."""
    gains = pd.DataFrame(person_bootstrap_gains(truth, new, old, person, resamples))
    return {score: tuple(np.percentile(gains[score], [2.5, 97.5])) for score in F1_SCORES}


def of_models(tables: dict, models) -> dict:
    """The tables of `models`' members only."""
    return {member: table for member, table in tables.items() if member.model in models}


def table_row(name: str, truth: dict, answers: tuple, base: tuple, people: dict, resamples: int) -> str:
    """One markdown row: out-of-fold, then eval scores, each gain over `base` with its interval."""
    cells = [name]
    for kind, new, old in (("oof", answers[0], base[0]), ("eval", answers[1], base[1])):
        scores, before = task_scores(truth[kind], new), task_scores(truth[kind], old)
        low, high = bootstrap(truth[kind], new, old, people[kind], resamples)["macro_f1"]
        tasks = " / ".join(f"{scores[f'{task}_f1']:.4f}" for task in ("mask", "gender", "age"))
        gain = scores["macro_f1"] - before["macro_f1"]
        cells += [f"{scores['macro_f1']:.4f}", tasks, f"{gain:+.4f} [{low:+.3f}, {high:+.3f}]"]
    return "| " + " | ".join(cells) + " |"


def selection_table(results: Path) -> None:
    """What `keep: best` would have chosen, from the histories of a `keep: last` run: per model,
    the folds where another epoch or the raw weights scored better on the held-out fold, and
    the mean validation macro F1 of that choice against the last epoch's kept weights (the
    in-sample gain that keep: best reports out of fold)."""
    print("| model | folds where best is not last | mean val macro F1: last | best (in sample) | gain |")
    print("|---|---|---|---|---|")
    for model in sorted(path.name for path in (results / "train").iterdir()):
        histories = [
            pd.read_csv(path) for path in sorted((results / "train" / model).glob("fold*/history.csv"))
        ]
        candidates = [[c for c in ("val_f1_raw", "val_f1_ema") if c in h] or ["val_f1"] for h in histories]
        last = [h["val_f1"].iloc[-1] for h in histories]
        best = [h[c].to_numpy().max() for h, c in zip(histories, candidates, strict=True)]
        moved = sum(b > a for a, b in zip(last, best, strict=True))
        last_f1, best_f1 = np.mean(last), np.mean(best)
        figures = f"{last_f1:.4f} | {best_f1:.4f} | {best_f1 - last_f1:+.4f}"
        print(f"| {model} | {moved} of {len(histories)} | {figures} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("labels", help="eval answers: ImageID, ans, person")
    parser.add_argument("--models", nargs="+", help="the models voted (default: all of the run)")
    parser.add_argument(
        "--pair", nargs=2, action="append", default=[], help="also the equal vote of these two"
    )
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    selection_table(args.results_dir)

    oof, eval_logits = run_tables(args.results_dir, args.models)
    image_ids = pd.read_csv(args.results_dir / "index/eval_photos.csv", dtype=str)["ImageID"].tolist()
    labels = (
        pd.read_csv(args.labels, dtype={"ImageID": str, "person": str}).set_index("ImageID").loc[image_ids]
    )
    shares = class_counts_to_match(args.results_dir / "index/train_photos.csv", True)
    runs = {name: option_answers(oof, eval_logits, image_ids, shares, fit) for name, fit in OPTIONS.items()}
    for pair in args.pair:
        runs[f"equal vote of {' + '.join(pair)}"] = option_answers(
            of_models(oof, pair), of_models(eval_logits, pair), image_ids, shares, {}
        )
    runs = {name: (answers["predicted"].to_numpy(), classes) for name, (answers, classes) in runs.items()}
    table = next(iter(oof_by_model(oof).values()))
    print(f"{args.results_dir}: {len(table)} out-of-fold and {len(labels)} eval photos")
    print_gains("option", runs, table, labels, args.resamples)


def print_gains(kind: str, runs: dict, oof_table: pd.DataFrame, labels: pd.DataFrame, resamples: int) -> None:
    """The markdown table of `runs` ({name: (out-of-fold answers, eval classes)}), each gain over
    the first run; the truth and people from an out-of-fold table and the eval `labels`."""
    truth = {"oof": oof_table["label"].to_numpy(), "eval": labels["ans"].to_numpy()}
    people = {"oof": oof_table["person"].to_numpy(), "eval": labels["person"].to_numpy()}
    base = next(iter(runs))
    print(f"gains over {base!r}")
    print(
        f"| {kind} | OOF macro F1 | OOF mask / gender / age F1 | OOF gain [95 %] "
        "| eval macro F1 | eval mask / gender / age F1 | eval gain [95 %] |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, answers in runs.items():
        print(table_row(name, truth, answers, runs[base], people, resamples))


if __name__ == "__main__":
    main()
