"""Each card gets the precision it computes natively; a job that was told to use the GPU and
finds none stops at once, saying why and how to fix torch; a run left to choose warns once that it
runs on the CPU, not once per job."""

import logging
import os

import pytest
import torch

from facemask.data.folds import make_folds
from facemask.data.photo_index import index_train_photos
from facemask.predict.cli import parse_arguments
from facemask.train.fold import TrainOutputs, train_fold
from facemask.utils.cpus import available_cpus, job_threads
from facemask.utils.devices import (
    job_precision,
    pick_device,
    resolve_precision,
    torch_install_command,
    warn_if_no_gpu,
)
from facemask.utils.errors import PipelineError

from .conftest import model_settings

NVIDIA_SMI = """#!/bin/sh
echo "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2     |"
"""


@pytest.mark.parametrize(
    ("capability", "precision"),
    [
        ((7, 0), "fp16"),  # V100
        ((7, 5), "fp16"),  # T4
        ((6, 0), "fp16"),  # P100
        ((8, 0), "bf16"),  # A100
        ((8, 9), "bf16"),  # L4, RTX 40
        ((9, 0), "bf16"),  # H100
        (None, "fp32"),  # the CPU
    ],
)
def test_auto_precision_is_bf16_from_sm80_fp16_before_and_fp32_on_the_cpu(capability, precision):
    assert resolve_precision("auto", capability) == precision


@pytest.mark.parametrize("setting", ["bf16", "fp16", "fp32"])
def test_a_precision_set_by_name_is_kept_on_every_device(setting):
    assert {resolve_precision(setting, capability) for capability in [(7, 0), (9, 0), None]} == {setting}


@pytest.mark.parametrize(
    ("capability", "precision"), [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_a_job_asks_its_gpu_for_its_compute_capability(monkeypatch, capability, precision):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert job_precision("auto", torch.device("cuda")) == precision
    assert job_precision("auto", torch.device("cpu")) == "fp32"


def test_bf16_asked_of_a_gpu_without_bf16_tensor_cores_is_kept_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert job_precision("bf16", torch.device("cuda")) == "bf16"
    assert "no bf16 tensor cores" in caplog.text


def test_device_cuda_without_a_usable_gpu_stops_the_train_job_naming_torch_the_driver_and_the_fix(
    demo_dir, demo_cache, monkeypatch, tmp_path
):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvidia-smi").write_text(NVIDIA_SMI)
    (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    out.mkdir()
    index = index_train_photos(demo_dir, (30, 60))
    with pytest.raises(PipelineError) as stopped:
        train_fold(
            index,
            make_folds(index, k=3, seed=0),
            0,
            model_settings(arch="resnet18"),
            demo_cache["train"],
            TrainOutputs(out / "checkpoint.pt", out / "oof_logits.csv", out / "history.csv"),
            device="cuda",
        )
    message = str(stopped.value)
    assert f"torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}" in message
    assert "torch.cuda.is_available() False" in message and "driver 535.104.05" in message
    assert (
        "pip install --force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/cu121"
        in message
    )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("driver_cuda", "fix"),
    [
        ((12, 2), "whl/cu121"),
        ((12, 8), "whl/cu128"),
        ((13, 1), "whl/cu130"),
        ((11, 4), "update the NVIDIA driver"),
    ],
)
def test_the_fix_installs_the_newest_torch_build_the_driver_runs(driver_cuda, fix):
    assert fix in torch_install_command(driver_cuda)


def test_device_auto_without_a_gpu_runs_on_the_cpu_with_an_info_line_not_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="facemask"):
        assert pick_device("auto") == torch.device("cpu")
    assert [record.levelno for record in caplog.records] == [logging.INFO]
    assert "no GPU" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("setting", "gpu", "warned"),
    [("auto", False, True), ("auto", True, False), ("cpu", False, False), ("cuda", False, False)],
)
def test_a_run_warns_that_it_finds_no_gpu_only_where_it_was_left_to_choose(
    monkeypatch, caplog, setting, gpu, warned
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    with caplog.at_level(logging.INFO, logger="facemask"):
        assert warn_if_no_gpu(setting) is warned
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == warned and all("torch sees no GPU" in warning for warning in warnings)


@pytest.mark.workflow
def test_the_jobs_of_a_run_left_to_choose_do_not_each_warn_of_the_cpu(tiny_run):
    """The demo's `device: auto`: the run warns once, when it starts (the Snakefile's onstart)."""
    logs = list((tiny_run / "results/tiny/logs").rglob("*.log"))
    assert len(logs) > 10
    assert not [log for log in logs if "sees no GPU" in log.read_text()]


def test_device_cpu_stays_on_the_cpu_without_a_word(caplog):
    assert pick_device("cpu") == torch.device("cpu")
    assert not caplog.records


@pytest.fixture
def node_of_128_cores(monkeypatch):
    """A process free to run on all 128 CPUs of its node, outside SLURM."""
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(128)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 128)


def test_a_slurm_job_uses_the_cpus_slurm_gave_it_not_the_nodes(node_of_128_cores, monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    assert available_cpus() == 8
    assert parse_arguments(["predict", "photos"]).threads == 8


def test_outside_slurm_a_process_uses_the_cpus_of_its_affinity_mask(node_of_128_cores, monkeypatch):
    assert available_cpus() == 128
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)  # taskset, a cgroup
    assert available_cpus() == 3 and parse_arguments(["predict", "photos"]).threads == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")  # never more than the affinity mask allows
    assert available_cpus() == 3


@pytest.mark.parametrize("value", ["", "0", "-4", "eight", "8.5"])
def test_a_slurm_cpu_count_not_a_whole_number_above_0_is_ignored(node_of_128_cores, monkeypatch, value):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", value)
    assert available_cpus() == 128


def test_without_an_affinity_mask_the_cpu_count_is_os_cpu_count(node_of_128_cores, monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert available_cpus() == 128
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert available_cpus() == 4


def test_a_jobs_threads_are_capped_at_its_cpus_saying_so_once(node_of_128_cores, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="facemask")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")
    assert job_threads(4) == 4 and not caplog.records
    assert [job_threads(12), job_threads(12)] == [6, 6]
    assert [record.getMessage() for record in caplog.records] == [
        "using 6 threads, not the 12 asked: this process may use 6 CPUs (SLURM_CPUS_PER_TASK or its CPU "
        "affinity)"
    ]
