"""The second (pseudo-labelled) round against the first, on a finished run with `pseudo_labels`:
for each model of the second round, its out-of-fold scores (classes matched to the other folds'
shares, as cv_summary scores them) and eval scores in each round, alone, with person-bootstrap
95 % intervals of each gain over the model's first round; and the first round's vote of all its
models (the pseudo labels' source) for reference. With several models in the second round, its
vote against the first round's vote of the same models too. The out-of-fold figures decide; the eval
columns are for the report.

    python scripts/benchmarks/pseudo_rounds.py results/utkmask-vote ../shared/data/utkmask-dev/eval/labels.csv
"""

import argparse
from pathlib import Path

import pandas as pd
from vote_options import of_models, option_answers, print_gains, run_tables

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.fit import oof_by_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("labels", help="eval answers: ImageID, ans, person")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    first_oof, first_eval = run_tables(args.results_dir, None)
    second_oof, second_eval = run_tables(args.results_dir / "pseudo", None)
    image_ids = pd.read_csv(args.results_dir / "index/eval_photos.csv", dtype=str)["ImageID"].tolist()
    labels = (
        pd.read_csv(args.labels, dtype={"ImageID": str, "person": str}).set_index("ImageID").loc[image_ids]
    )
    shares = class_counts_to_match(args.results_dir / "index/train_photos.csv", True)
    pseudo = pd.read_csv(args.results_dir / "pseudo/labels.csv")
    right = pseudo.merge(labels["ans"].reset_index(), on="ImageID")
    print(
        f"pseudo photos per fold: {pseudo.groupby('fold').size().to_dict()}; "
        f"their labels right: {(right['label'] == right['ans']).mean():.3f}"
    )

    def answers(oof, eval_logits) -> tuple:
        found, classes = option_answers(oof, eval_logits, image_ids, shares, {})
        return found["predicted"].to_numpy(), classes

    for model in sorted({member.model for member in second_oof}):
        runs = {
            f"{model}, first round": answers(of_models(first_oof, [model]), of_models(first_eval, [model])),
            f"{model}, second round (pseudo-labels)": answers(
                of_models(second_oof, [model]), of_models(second_eval, [model])
            ),
            "first round's vote of all its models": answers(first_oof, first_eval),
        }
        table = next(iter(oof_by_model(of_models(first_oof, [model])).values()))
        print_gains("run", runs, table, labels, args.resamples)
    second_models = sorted({member.model for member in second_oof})
    if len(second_models) > 1:
        votes = {
            "first round's vote of the same models": answers(
                of_models(first_oof, second_models), of_models(first_eval, second_models)
            ),
            "second round's vote (pseudo-labels)": answers(second_oof, second_eval),
        }
        table = next(iter(oof_by_model(first_oof).values()))
        print_gains("vote", votes, table, labels, args.resamples)


if __name__ == "__main__":
    main()
