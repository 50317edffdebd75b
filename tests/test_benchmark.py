"""The speed benchmark script runs and reports its side-by-side ratios (figures: docs/benchmarks.md)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "benchmark.py"


def run_benchmark(tmp_path, *args) -> list[dict]:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--repeats", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())["results"]


def test_the_input_benchmark_compares_the_peers_loader_with_the_cache_on_full_size_photos(tmp_path):
    [result] = run_benchmark(tmp_path, "input", "--people", "12", "--batch-size", "8", "--size", "64x48")
    assert (
        result["photos"] == 12 * 7 and result["baseline_images_per_s"] > 0 and result["ours_images_per_s"] > 0
    )
    assert result["ratio"] == pytest.approx(
        result["ours_images_per_s"] / result["baseline_images_per_s"], rel=0.05
    )
    assert result["ratio"] > 2  # the cache is sliced, the baseline decodes every photo (measured here: 7-18x)


def test_the_face_finder_benchmark_times_the_former_and_the_batched_search_on_full_size_photos(tmp_path):
    [result] = run_benchmark(tmp_path, "faces", "--people", "4")
    assert (
        result["photos"] == 4 * 7 and result["baseline_photos_per_s"] > 0 and result["ours_photos_per_s"] > 0
    )
    assert result["ratio"] == pytest.approx(
        result["ours_photos_per_s"] / result["baseline_photos_per_s"], rel=0.05
    )
    assert result["competition_minutes_ours"] == pytest.approx(
        31_500 / result["ours_photos_per_s"] / 60, 0.05
    )


def test_the_tta_benchmark_finds_batched_and_ttach_outputs_equal(tmp_path):
    results = run_benchmark(tmp_path, "tta", "--batch-size", "2", "--tta-size", "32")
    assert [r["views"] for r in results] == [2, 6]
    assert all(r["max_abs_difference"] < 1e-4 for r in results)


def test_the_gpu_benchmark_says_clearly_that_it_needs_a_gpu(tmp_path):
    pytest.importorskip("torch").cuda.is_available() and pytest.skip("a GPU is present")
    run = subprocess.run([sys.executable, str(SCRIPT), "gpu"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "needs a GPU" in run.stderr


@pytest.mark.parametrize("jobs_per_gpu", [1, 2])
def test_the_gpu_benchmark_measures_the_limit_and_end_to_end_and_extrapolates_the_ensemble(
    tmp_path, jobs_per_gpu
):
    results = run_benchmark(
        tmp_path,
        "gpu",
        "--device",
        "cpu",
        "--models",
        "resnet34",
        "--batch-size",
        "4",
        "--gpu-photos",
        "8",
        "--gpu-size",
        "32",
        "--workers",
        "0",
        "--jobs-per-gpu",
        str(jobs_per_gpu),
    )
    assert (
        results[0]["model"] == "resnet34"
        and results[0]["limit_images_per_s"] > 0
        and results[0]["end_to_end_images_per_s"] > 0
    )
    assert results[0]["inference_images_per_s"] > 0 and results[0]["warmup_s"] >= 0
    assert results[-1]["benchmark"] == "default ensemble (extrapolated)" and results[-1]["minutes"] > 0
    assert results[0]["jobs_per_gpu"] == results[-1]["jobs_per_gpu"] == jobs_per_gpu


@pytest.mark.parametrize(("jobs_per_gpu", "seconds"), [(1, 60 + 40), (2, 50 + 30)])
def test_the_ensembles_wall_time_is_extrapolated_from_the_measured_rates(jobs_per_gpu, seconds):
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # puts scripts/benchmarks/ on the path
    from benchmarks import gpu

    rows = [
        {
            "end_to_end_images_per_s": 100,
            "cache_on_gpu_images_per_s": 50,
            "inference_images_per_s": 200,
            "warmup_s": 10,
        },
        {
            "end_to_end_images_per_s": 150,
            "cache_on_gpu_images_per_s": 200,
            "inference_images_per_s": 400,
            "warmup_s": 10,
        },
    ]
    # a fold of each model: 2 epochs of 500 training photos at its better training rate (10 s, 5 s), 2 x 500
    # validation and 500 x 2 TTA views at its inference rate (10 s, 5 s), and its warm-up (10 s,
    # shared by the jobs of a GPU)
    result = gpu.extrapolate_ensemble(
        [row | {"jobs_per_gpu": jobs_per_gpu} for row in rows],
        train_photos=1000,
        eval_photos=500,
        epochs=2,
        folds=2,
    )
    assert result["minutes"] == round(seconds / 60, 1) and result["models"] == 2


def test_the_weight_search_benchmark_compares_the_grid_with_the_greedy_search(tmp_path):
    results = run_benchmark(
        tmp_path,
        "weights",
        "--weight-models",
        "2",
        "3",
        "--grid-models",
        "2",
        "--grid-now-models",
        "2",
        "--oof-people",
        "30",
        "--oof-folds",
        "3",
    )
    rows = {(row["models"], row["search"]): row for row in results}
    greedy = rows[(3, "greedy 20 rounds, offsets now")]
    assert greedy["votes"] <= 21 * 3 * 4 and greedy["macro_f1"] > 0.2  # k + 1 = 4 fits; well above chance
    assert rows[(2, "grid 0.1, offsets before")]["figure"] == "measured"
    assert rows[(3, "grid 0.1, offsets before")]["figure"] == "extrapolated"
