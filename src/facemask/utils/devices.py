"""Where a job computes: a GPU (facemask.utils.gpu_slots places it) or the CPU (the `device` setting);
and in which precision (the `precision` setting): autocast in bf16 or
fp16, fp16 with loss scaling, or plain fp32."""

import os
import re
import shutil
import subprocess
from collections.abc import Callable

import torch

from facemask.utils.errors import PipelineError
from facemask.utils.logs import log

#: the autocast dtype of each precision setting (fp32: no autocast)
PRECISION_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
#: PyTorch's CUDA wheel indexes (https://download.pytorch.org/whl/<tag>), oldest first
TORCH_CUDA_WHEELS = ("cu118", "cu121", "cu124", "cu126", "cu128", "cu130")


def pick_device(setting: str = "auto") -> torch.device:
    """The device of the `device` setting: 'cpu'; 'cuda', the GPU (the first visible, see
    CUDA_VISIBLE_DEVICES) or, when torch sees none, a PipelineError that says why and how to fix
    it; 'auto', the GPU when torch sees one, else the CPU with an info line (the run warns once:
    see warn_if_no_gpu)."""
    if setting == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if setting == "cuda":
        raise PipelineError(f"device is cuda, but torch sees no GPU: {gpu_diagnosis()}")
    log.info("device auto: no GPU visible to torch, so on the CPU")
    return torch.device("cpu")


def warn_if_no_gpu(setting: str, warn: Callable[[str], object] = log.warning) -> bool:
    """`warn` that `device: auto` finds no GPU, so the jobs run on the CPU, many times slower, saying
    why and how to fix torch: once per run, where the run starts. Silent for 'cpu' and 'cuda' (whose
    jobs stop at once without a GPU). Whether it warned."""
    if setting != "auto" or torch.cuda.is_available():
        return False
    warn(f"torch sees no GPU, so the jobs run on the CPU, many times slower: {gpu_diagnosis()}")
    return True


def gpu_diagnosis() -> str:
    """Why torch may see no GPU: its version, the CUDA it was built for, what torch.cuda reports,
    the driver that nvidia-smi reports, and the command that installs a torch for that driver."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    facts = (
        f"torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none (a CPU-only build)'}, "
        "reports "
        f"torch.cuda.is_available() {torch.cuda.is_available()} and {torch.cuda.device_count()} device(s)"
        + (f" with CUDA_VISIBLE_DEVICES={hidden!r}" if hidden is not None else "")
    )
    if not shutil.which("nvidia-smi"):
        return (
            f"{facts}; there is no nvidia-smi, so no NVIDIA driver "
            "(device: cpu runs on the CPU without this check)"
        )
    report = subprocess.run(["nvidia-smi"], capture_output=True, text=True)
    driver = re.search(r"Driver Version:\s*(\S+)\s+CUDA Version:\s*(\d+)\.(\d+)", report.stdout)
    if report.returncode != 0 or not driver:
        return f"{facts}; nvidia-smi fails: {(report.stderr or report.stdout).strip()[:300]}"
    return (
        f"{facts}; nvidia-smi reports driver {driver[1]}, which runs CUDA up to {driver[2]}.{driver[3]}. "
        f"Fix: {torch_install_command((int(driver[2]), int(driver[3])))}"
    )


def torch_install_command(driver_cuda: tuple[int, int]) -> str:
    """The command that installs the newest torch built for a CUDA the driver runs (or says to
    update the driver, when it runs none that torch is built for)."""
    fitting = [tag for tag in TORCH_CUDA_WHEELS if (int(tag[2:-1]), int(tag[-1])) <= driver_cuda]
    if not fitting:
        return (
            f"update the NVIDIA driver: it runs CUDA up to {driver_cuda[0]}.{driver_cuda[1]}, "
            "torch needs 11.8 or later"
        )
    index = f"https://download.pytorch.org/whl/{fitting[-1]}"
    return f"pip install --force-reinstall torch torchvision --index-url {index}"


def resolve_precision(setting: str, capability: tuple[int, int] | None) -> str:
    """The precision a job computes in: `setting` unless it is 'auto'; for 'auto', fp32 on the
    CPU (`capability` None), bf16 on a GPU of compute capability 8.0 or later (A100, H100, L4,
    RTX 30 and later: bf16 tensor cores), fp16 with loss scaling before (V100, T4, P100)."""
    if setting != "auto":
        return setting
    if capability is None:
        return "fp32"
    return "bf16" if capability >= (8, 0) else "fp16"


def job_precision(setting: str, device: torch.device) -> str:
    """`resolve_precision` for `device`, asking a GPU its compute capability; a warning where
    bf16 is asked of a GPU without bf16 tensor cores."""
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    if setting == "bf16" and capability and capability < (8, 0):
        log.warning(
            "precision bf16 on a GPU of compute capability %d.%d, which has no bf16 tensor cores, is slow or "
            "fails; auto gives it fp16 with loss scaling",
            *capability,
        )
    return resolve_precision(setting, capability)


def autocast(device: torch.device, precision: str):
    """Autocast to the dtype of `precision` (bf16, fp16) on `device`; a no-op context for fp32."""
    return torch.autocast(device.type, dtype=PRECISION_DTYPES[precision], enabled=precision != "fp32")


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The loss scaler fp16 needs (its small range would flush small gradients to zero); a
    pass-through for the other precisions."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
