"""Person-level bootstrap of a finished run's eval set: the submission's macro F1 minus that of its
best single model (the vote of that model's own folds, classes decided the same way), with a 95 %
interval and the share of resamples where the submission is ahead.

    python scripts/tools/bootstrap_gain.py results/utkmask-lite-ensemble ../shared/data/utkmask-dev/eval/labels.csv

The labels CSV needs ImageID, ans and person columns (utkmask-dev's eval/labels.csv has them).
Give --plain for a run made with `ensemble.match_class_shares: false`, and --models BASE NEW to
compare two of the run's models instead (NEW's own fold vote minus BASE's), e.g. a recipe with a
new option trained beside the old one on the same folds.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.ensemble import read_class_shares, vote_each_model_alone
from facemask.files import read_member_tables
from facemask.scores import macro_f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="a finished run's results_dir")
    parser.add_argument("labels", help="eval answers: ImageID, ans, person")
    parser.add_argument("--plain", action="store_true", help="plain argmax (the run did not match class shares)")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs=2, metavar=("BASE", "NEW"), help="compare NEW with BASE instead")
    args = parser.parse_args()

    paths = sorted(args.results_dir.glob("predict/*/fold*/eval_logits.csv"))
    members = [f"{path.parent.parent.name}/{path.parent.name.removeprefix('fold')}" for path in paths]
    eval_logits = read_member_tables(members, [str(path) for path in paths])
    image_ids = pd.read_csv(args.results_dir / "index/eval_photos.csv", dtype=str)["ImageID"].tolist()
    shares = None if args.plain else read_class_shares(args.results_dir / "index/train_photos.csv")
    answers = pd.read_csv(args.labels, dtype={"ImageID": str, "person": str}).set_index("ImageID").loc[image_ids]
    submission = pd.read_csv(args.results_dir / "submission.csv", dtype={"ImageID": str}).set_index("ImageID").loc[image_ids, "ans"]

    truth = answers["ans"].to_numpy()
    alone = {model: table["ans"].to_numpy() for model, table in vote_each_model_alone(eval_logits, image_ids, shares).items()}
    best = max(alone, key=lambda model: macro_f1(truth, alone[model]))
    voted, name = submission.to_numpy(), "submission"
    if args.models:
        (best, name), voted = args.models, alone[args.models[1]]

    person = answers["person"].to_numpy()
    rows_of_person = [np.flatnonzero(person == one) for one in np.unique(person)]
    rng = np.random.default_rng(args.seed)
    gains = []
    for _ in range(args.resamples):
        rows = np.concatenate([rows_of_person[i] for i in rng.integers(len(rows_of_person), size=len(rows_of_person))])
        gains.append(macro_f1(truth[rows], voted[rows]) - macro_f1(truth[rows], alone[best][rows]))
    low, high = np.percentile(gains, [2.5, 97.5])
    print(f"{args.results_dir}: {name} minus {best}{'' if args.models else ' (the best single model)'}: "
          f"{macro_f1(truth, voted) - macro_f1(truth, alone[best]):+.4f}, 95 % interval [{low:+.4f}, {high:+.4f}], "
          f"ahead in {np.mean(np.array(gains) > 0):.0%} of {args.resamples} resamples of {len(rows_of_person)} people")


if __name__ == "__main__":
    main()
