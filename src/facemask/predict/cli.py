"""The `facemask` command: predict photos with a trained ensemble, without Snakemake; print the
winner of a sweep as a model block.

facemask predict PHOTOS_OR_FOLDERS... --ensemble results/ --out predictions.csv
facemask adopt results/sweeps/NAME [--out winner.yaml]
"""

import argparse
import logging
import time
from pathlib import Path

from facemask.data.photo_index import DataReport
from facemask.predict.photos import collect_photos, ignored_files_message, predict_photos, read_checked_bundle
from facemask.utils.cpus import available_cpus
from facemask.utils.devices import pick_device, warn_if_no_gpu
from facemask.utils.errors import PipelineError
from facemask.utils.files import write_csv, write_text
from facemask.utils.logs import log, run_job
from facemask.utils.memory import CPU_BATCH_SIZE


def parse_arguments(argv=None) -> argparse.Namespace:
    """The command line: a subcommand and its options."""
    parser = argparse.ArgumentParser(prog="facemask", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add_predict_command(commands)
    adopt = commands.add_parser(
        "adopt",
        help="print the winner of a sweep as a model block to paste into config.yaml",
        description="The sweep's best variant out of fold (rule rank_sweep's winner.yaml): a model block "
        "named <base>_<sweep>, with how it scored and how it differs from the base.",
    )
    adopt.add_argument("sweep", help="the sweep's folder, e.g. results/sweeps/lr")
    adopt.add_argument("--out", help="write the block to this file instead of printing it")
    return parser.parse_args(argv)


def add_predict_command(commands) -> None:
    """`facemask predict` and its options."""
    predict = commands.add_parser(
        "predict",
        help="answer mask / gender / age for photos with a trained ensemble",
        description="One row per photo: path, the 18-class answer (ans), mask, gender and age band in words, "
        "and the 18 vote probabilities. Runs on a GPU when torch sees one, else on the CPU.",
    )
    predict.add_argument(
        "photos",
        nargs="+",
        help="photo files (in the order given) and folders (searched recursively for the image formats "
        "PIL opens: .jpg, .jpeg, .png, .webp, .bmp, .tif, ..., any case; other files are named and ignored)",
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
        help="auto (default): a GPU when torch sees one, else the CPU; cuda: stop at once if there is none",
    )
    predict.add_argument(
        "--batch-size",
        type=batch_size_option,
        help=f"photos per forward pass, or auto: the largest that fits the GPU ({CPU_BATCH_SIZE} on the CPU) "
        "(default: the bundle's TTA batch size)",
    )
    verbosity = predict.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    verbosity.add_argument("--verbose", action="store_true", help="log debug lines too")


def batch_size_option(text: str) -> int | str:
    """--batch-size: a whole number of photos, at least 1, or auto."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of photos (at least 1) or auto")
    return int(text)


def set_verbosity(quiet: bool, verbose: bool) -> None:
    """Log warnings and errors only (`quiet`), debug lines too (`verbose`, the package's only), or
    the usual info lines."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    log.setLevel(level)
    logging.getLogger().setLevel(max(level, logging.INFO))


def predict(args: argparse.Namespace) -> None:
    """`facemask predict`: check the device, the bundle and the photos, predict, write the CSV."""
    started = time.perf_counter()
    set_verbosity(args.quiet, args.verbose)
    warn_if_no_gpu(args.device)
    device = pick_device(args.device)  # once, before any photo: its error shows once
    bundle = read_checked_bundle(args.ensemble)
    members = len(bundle.members)
    report = DataReport()
    photos = collect_photos(args.photos, report)
    log.info("%d photos, %d ensemble members, on %s", len(photos), members, device)
    if report.ignored_files:
        log.info("%s", ignored_files_message(report.ignored_files))
        log.debug("ignored files: %s", ", ".join(report.ignored_files))
    table = predict_photos(bundle, photos, args.threads, args.batch_size, device)
    write_csv(table, args.out)
    seconds = time.perf_counter() - started
    log.info(
        "wrote %s: %d photos, %d members, %.1f s, %.3g photos/s",
        args.out,
        len(table),
        members,
        seconds,
        len(table) / seconds,
    )


def adopt(args: argparse.Namespace) -> None:
    """`facemask adopt`: the sweep's winner as a model block, printed or written to `--out`."""
    winner = Path(args.sweep) / "winner.yaml"
    if not winner.is_file():
        raise PipelineError(
            f"{winner}: no winner of a sweep there: give a sweep's folder (results/sweeps/<name>) "
            "after its ranking ran (snakemake sweep_<name>)"
        )
    if args.out:
        write_text(winner.read_text(), args.out)
        log.info("the winner of %s written to %s", args.sweep, args.out)
    else:
        print(winner.read_text(), end="")


def main(argv=None) -> None:
    """Entry point of the `facemask` command."""
    args = parse_arguments(argv)
    run_job(lambda: predict(args) if args.command == "predict" else adopt(args))


if __name__ == "__main__":
    main()
