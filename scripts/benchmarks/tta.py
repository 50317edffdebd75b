"""Test-time augmentation: batched (all views in one pass) and per-view passes of our BatchedTTA
against ttach's one-pass-per-view wrapper: images/s and the largest output difference."""

import json
import time

import torch
import ttach
from benchmarks.common import synchronize

from facemask.model.classifier import create_classifier
from facemask.model.inference import BatchedTTA, tta_transforms
from facemask.utils.devices import autocast, job_precision, pick_device


def bench_tta(args) -> list[dict]:
    """ttach's one forward pass per view vs BatchedTTA's one pass of all views and its pass per
    view (what jobs on the CPU run): images/s, the best of `repeats` alternating rounds (so that
    each sees the same machine load), and the largest difference from ttach's output."""
    device = pick_device()
    precision = job_precision("auto", device)
    model = create_classifier(args.arch).to(device).eval()
    images = torch.randn(args.batch_size, 3, args.tta_size, args.tta_size, device=device)
    rows = []
    for spec in (["HorizontalFlip"], ["HorizontalFlip", {"Multiply": {"factors": [0.9, 1.1]}}]):
        runs = {
            "ttach": ttach.ClassificationTTAWrapper(
                torch.nn.Sequential(model, torch.nn.Softmax(1)), tta_transforms(spec)
            ),
            "batched": BatchedTTA(model, spec),
            "per_view": BatchedTTA(model, spec, one_pass=False),
        }
        with torch.no_grad(), autocast(device, precision):
            probabilities = {name: run(images).float() for name, run in runs.items()}  # also the warm-up
            rates = {name: 0.0 for name in runs}
            for _ in range(args.repeats):
                for name, run in runs.items():
                    started = time.perf_counter()
                    run(images)
                    synchronize(device)
                    rates[name] = max(rates[name], len(images) / (time.perf_counter() - started))
        differences = [
            float((probabilities["ttach"] - probabilities[name].exp()).abs().max())
            for name in ("batched", "per_view")
        ]
        rows.append(
            {
                "benchmark": "TTA",
                "arch": args.arch,
                "device": str(device),
                "precision": precision,
                "views": len(tta_transforms(spec)),
                "transforms": json.dumps(spec),
                **{f"{name}_images_per_s": round(rate, 1) for name, rate in rates.items()},
                "ratio": round(rates["batched"] / rates["ttach"], 2),
                "per_view_ratio": round(rates["per_view"] / rates["ttach"], 2),
                "jobs_run": "batched" if device.type == "cuda" else "per_view",
                "max_abs_difference": max(differences),
            }
        )
    return rows
