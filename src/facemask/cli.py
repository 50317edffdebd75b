"""The `facemask` command: predict photos with a trained ensemble, without Snakemake.

facemask predict PHOTOS_OR_FOLDERS... --ensemble results/ --out predictions.csv
"""

import argparse
import time

from facemask.bundle import read_bundle
from facemask.cpus import available_cpus
from facemask.dataset import DataReport
from facemask.files import write_csv
from facemask.logs import log, run_job
from facemask.prediction import collect_photos, predict_photos


def parse_arguments(argv=None) -> argparse.Namespace:
    """The command line: a subcommand and its options."""
    parser = argparse.ArgumentParser(prog="facemask", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict",
        help="answer mask / gender / age for photos with a trained ensemble",
        description="One row per photo: path, the 18-class answer (ans), mask, gender and age band in words, "
        "and "
        "the 18 vote probabilities. Runs on a GPU when torch sees one, else on the CPU.",
    )
    predict.add_argument(
        "photos",
        nargs="+",
        help="photo files (in the order given) and folders (searched recursively "
        "for .jpg, .jpeg and .png, any case)",
    )
    predict.add_argument(
        "--ensemble",
        default="results",
        help="an ensemble bundle (ensemble.json) or the results folder "
        "holding ensemble/ensemble.json (default: results)",
    )
    predict.add_argument(
        "--out", default="predictions.csv", help="the CSV to write (default: predictions.csv)"
    )
    predict.add_argument(
        "--threads",
        type=int,
        default=available_cpus(),
        help="CPU threads; each ensemble member loads photos with threads - 1 workers "
        "(default: the CPUs this process may use, %(default)s here: its CPU "
        "affinity, at most SLURM_CPUS_PER_TASK)",
    )
    predict.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="auto (default): a GPU when torch sees one, else the CPU; cuda: stop if there is none",
    )
    predict.add_argument(
        "--batch-size", type=int, help="photos per forward pass (default: the bundle's TTA batch size)"
    )
    return parser.parse_args(argv)


def predict(args: argparse.Namespace) -> None:
    """`facemask predict`: check the bundle and the photos, predict, write the CSV."""
    started = time.perf_counter()
    bundle = read_bundle(args.ensemble)
    report = DataReport()
    photos = collect_photos(args.photos, report)
    log.info(
        "%d photos (%d other files ignored); %d ensemble members",
        len(photos),
        len(report.ignored_files),
        len(bundle["members"]),
    )
    table = predict_photos(bundle, photos, args.threads, args.batch_size, args.device)
    write_csv(table, args.out)
    log.info("wrote %s: %d photos in %.1f s", args.out, len(table), time.perf_counter() - started)


def main(argv=None) -> None:
    """Entry point of the `facemask` command."""
    args = parse_arguments(argv)
    run_job(lambda: predict(args))


if __name__ == "__main__":
    main()
