"""Speed of the pipeline against the peers' approach, side by side in one run (docs/benchmarks.md).

    python scripts/benchmark.py input [--source ../shared/data/utkmask-dev]   # input pipeline, CPU
    python scripts/benchmark.py tta                                      # batched / per-view vs ttach TTA
    python scripts/benchmark.py gpu                                      # model-only vs end to end, on a GPU
    python scripts/benchmark.py weights                                       # fitted vote's weight search
    python scripts/benchmark.py faces [--source data/utkmask-dev-framed]     # the face finder, CPU

`input`: images/s delivered to the training loop from full-size 384 x 512 photos, by the peers'
baseline (PIL decode + torchvision Resize / ToTensor / Normalize per photo per epoch, DataLoader
workers) and by ours (uint8 batches sliced from the prepared-image cache; the training
augmentation, which runs on the GPU in a real run, is timed here on the CPU as well).
`gpu`: training images/s of each seed architecture on random tensors already on the GPU (the
physical limit) and end to end (cache, loader, augmentation on the GPU, Mixup, loss, step), the
latter with batches read by loader workers and with the cache held on the GPU (`cache_on_gpu`),
inference images/s (both flip-TTA views in one pass), all in `--precision` (default auto, as
the jobs), the first passes' warm-up (compiling, with `--compile`), and the wall time of the
default 3 models x 5 folds ensemble extrapolated from those;
with `--jobs-per-gpu 2`, all of these for two jobs sharing the GPU at once (Snakemake's
`--resources gpu=2` on one GPU), to see whether sharing pays.
`faces`: photos/s of finding the faces of full-size photos, one photo at a time as the cache job
did before against facemask.data.faces.find_faces's batches, and the competition's minutes from each.
`weights`: minutes of the fitted vote (`ensemble: {fit_weights: true}`) on synthetic out-of-fold
logits at the competition's size, 3, 5 and 8 models, greedy selection against the old 0.1 grid,
and the cross-fitted macro F1 each reaches.
Results print as a Markdown table and are written as JSON with `--json`. Each benchmark is a
module of `scripts/benchmarks/`; their defaults come from the workflow's schema and config.yaml.
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the benchmarks/ modules beside this script
from benchmarks import faces, gpu, input_pipeline, tta, weight_search  # noqa: E402
from benchmarks.common import seed_models  # noqa: E402


def arguments() -> argparse.ArgumentParser:
    """The command line: the benchmark, and each benchmark's options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("benchmark", choices=["input", "tta", "gpu", "weights", "faces"])
    parser.add_argument(
        "--source", help="a data set in the competition layout to resize to 384 x 512 (default: generated)"
    )
    parser.add_argument("--people", type=int, default=100, help="people of the generated data set")
    parser.add_argument("--size", default="256x192", help="model input, height x width")
    parser.add_argument("--batch-size", type=int, help="default: 64 (input, tta), the seed recipes' (gpu)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arch", default="resnet18", help="TTA benchmark model")
    parser.add_argument("--tta-size", type=int, default=128)
    add_gpu_options(parser)
    add_weight_options(parser)
    parser.add_argument("--json", help="also write the results here")
    return parser


def add_gpu_options(parser: argparse.ArgumentParser) -> None:
    """The options of the gpu benchmark."""
    parser.add_argument("--gpu-photos", type=int, default=4096)
    parser.add_argument(
        "--gpu-size",
        type=int,
        default=224,
        help="gpu benchmark: the photos' side (a smaller one only checks the script; the ViT needs 224)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(seed_models()),
        default=list(seed_models()),
        help="gpu benchmark models",
    )
    parser.add_argument(
        "--device", help="gpu benchmark: default the GPU; 'cpu' only checks that the script runs"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the models of the gpu benchmark"
    )
    parser.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp16", "fp32"],
        default="auto",
        help="gpu benchmark: as a model block's precision (auto: bf16 from sm80, fp16 before)",
    )
    parser.add_argument(
        "--jobs-per-gpu",
        type=int,
        default=1,
        help="gpu benchmark: this many jobs at once on the GPU, each in its own process "
        "(rates are all of theirs together)",
    )


def add_weight_options(parser: argparse.ArgumentParser) -> None:
    """The options of the weights benchmark."""
    parser.add_argument(
        "--weight-models", nargs="+", type=int, default=[3, 5, 8], help="weights benchmark: models voted"
    )
    parser.add_argument(
        "--grid-models",
        type=int,
        default=3,
        help="weights benchmark: run the old grid (old offsets) up to this many models, then extrapolate",
    )
    parser.add_argument(
        "--grid-now-models",
        type=int,
        default=5,
        help="weights benchmark: the same for the old grid with today's class-share offsets",
    )
    parser.add_argument(
        "--oof-people", type=int, default=2700, help="weights benchmark: people, 7 photos each"
    )
    parser.add_argument("--oof-folds", type=int, default=5, help="weights benchmark: folds")


def main():
    args = arguments().parse_args()
    torch.manual_seed(0)
    if args.benchmark != "gpu":
        args.batch_size = args.batch_size or 64
    rows = {
        "input": input_pipeline.bench_input,
        "tta": tta.bench_tta,
        "gpu": gpu.bench_gpu,
        "weights": weight_search.bench_weight_search,
        "faces": faces.bench_faces,
    }[args.benchmark](args)
    machine = {
        "machine": platform.node(),
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    print(json.dumps(machine))
    print(
        pd.DataFrame([{k: v for k, v in row.items() if k != "runs"} for row in rows]).to_markdown(index=False)
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
