"""Person-level bootstrap of a finished run's eval set: the submission's macro F1 minus that of its
best single model (the vote of that model's own folds, classes decided the same way), with a 95 %
interval and the share of resamples where the submission is ahead.

    python scripts/tools/bootstrap_gain.py results/utkmask-lite-ensemble \
        ../shared/data/utkmask-dev/eval/labels.csv

The labels CSV needs ImageID, ans and person columns (utkmask-dev's eval/labels.csv has them).
Give --plain for a run made with `ensemble.match_class_shares: false`, and --models BASE NEW to
compare two of the run's models instead (NEW's own fold vote minus BASE's), e.g. a recipe with a
new option trained beside the old one on the same folds; with --new-run DIR, NEW is that model of
another run on the same data and folds (e.g. the same recipe on face-cropped photos). --base MODEL
compares the submission with that model instead of the best one (e.g. a vote of some of the run's
models, made with `run_models`, against the recipe it builds on). Each line
gives one score: macro F1, accuracy, and the macro F1 of each task.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.classes.decision import class_counts_to_match
from facemask.classes.scores import macro_f1, person_bootstrap_gains, task_scores
from facemask.ensemble.vote import vote_each_model_alone
from facemask.utils.files import read_run_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="a finished run's results_dir")
    parser.add_argument("labels", help="eval answers: ImageID, ans, person")
    parser.add_argument(
        "--plain", action="store_true", help="plain argmax (the run did not match class shares)"
    )
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs=2, metavar=("BASE", "NEW"), help="compare NEW with BASE instead")
    parser.add_argument("--new-run", type=Path, help="with --models: the run NEW is read from")
    parser.add_argument("--base", help="compare the submission with this model, not the best one")
    args = parser.parse_args()

    image_ids = pd.read_csv(args.results_dir / "index/eval_photos.csv", dtype=str)["ImageID"].tolist()
    shares = class_counts_to_match(args.results_dir / "index/train_photos.csv", not args.plain)
    answers = (
        pd.read_csv(args.labels, dtype={"ImageID": str, "person": str}).set_index("ImageID").loc[image_ids]
    )
    submission = (
        pd.read_csv(args.results_dir / "submission.csv", dtype={"ImageID": str})
        .set_index("ImageID")
        .loc[image_ids, "ans"]
    )

    truth = answers["ans"].to_numpy()
    alone = models_alone(args.results_dir, image_ids, shares)
    best = args.base or max(alone, key=lambda model: macro_f1(truth, alone[model]))
    voted, name = submission.to_numpy(), "submission"
    if args.models:
        (best, name), other = (
            args.models,
            alone if args.new_run is None else models_alone(args.new_run, image_ids, shares),
        )
        voted = other[name]
        name = name if args.new_run is None else f"{name} of {args.new_run}"

    person = answers["person"].to_numpy()
    gains = pd.DataFrame(person_bootstrap_gains(truth, voted, alone[best], person, args.resamples, args.seed))
    measured = task_scores(truth, voted)
    base = task_scores(truth, alone[best])
    which = "" if args.models or args.base else " (the best single model)"
    print(
        f"{args.results_dir}: {name} minus {best}{which}, "
        f"{args.resamples} resamples of {len(np.unique(person))} people:"
    )
    for score in gains:
        low, high = np.percentile(gains[score], [2.5, 97.5])
        print(
            f"  {score}: {measured[score]:.4f} - {base[score]:.4f} = {measured[score] - base[score]:+.4f}, "
            f"95 % interval [{low:+.4f}, {high:+.4f}], ahead in {np.mean(gains[score] > 0):.0%}"
        )


def models_alone(results_dir: Path, image_ids, shares) -> dict[str, np.ndarray]:
    """Each model's eval answers in a run: the vote of its own folds, decided as the submission is."""
    eval_logits = read_run_tables(results_dir, "predict/*/fold*/eval_logits.csv")
    return {
        model: table["ans"].to_numpy()
        for model, table in vote_each_model_alone(eval_logits, image_ids, shares).items()
    }


if __name__ == "__main__":
    main()
