"""The portrait benchmark (docs/benchmarks.md (l)): finished runs of one recipe on the same people
and folds, each with other photos or crops (the whole framed photo, a centre crop, the face crop,
the oracle crop, the chips), scored out of fold (classes matched to the other folds' shares, as
cv_summary scores them) and on eval, each with its gain over the first run and a 95 % person-
bootstrap interval on the same resamples. The out-of-fold figures decide; eval is reported once.

    python scripts/benchmarks/portraits.py data/utkmask-dev-framed/eval/labels.csv \
        whole=results/framed-whole face=results/framed-face13 oracle=results/framed-oracle
"""

import argparse
from pathlib import Path

import pandas as pd
from vote_options import option_answers, print_gains, run_tables

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.fit import oof_by_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", help="eval answers: ImageID, ans, person")
    parser.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR", help="the first is the base")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--folds", type=int, nargs="+", help="score only these folds' photos out of fold")
    args = parser.parse_args()
    runs, base_table = {}, None
    for name, results in (run.split("=", 1) for run in args.runs):
        oof, eval_logits = run_tables(Path(results), None)
        image_ids = pd.read_csv(Path(results) / "index/eval_photos.csv", dtype=str)["ImageID"].tolist()
        shares = class_counts_to_match(Path(results) / "index/train_photos.csv", True)
        found, classes = option_answers(oof, eval_logits, image_ids, shares, {})
        if base_table is None:
            base_table, base_ids = next(iter(oof_by_model(oof).values())), image_ids
            if args.folds:
                base_table = base_table[base_table["fold"].isin(args.folds)]
        predicted = found["predicted"].reindex(base_table.index)
        if predicted.isna().any():
            raise SystemExit(f"{results}: its out-of-fold photos are not those of the first run")
        runs[name] = predicted.to_numpy(int), pd.Series(classes, index=image_ids).loc[base_ids].to_numpy()
    labels = (
        pd.read_csv(args.labels, dtype={"ImageID": str, "person": str}).set_index("ImageID").loc[base_ids]
    )
    print_gains("photos", runs, base_table, labels, args.resamples)


if __name__ == "__main__":
    main()
