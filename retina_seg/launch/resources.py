"""What the machine and the job a run lands on give it: a GPU or not, the CPUs SLURM grants, bf16 in hardware.
The configs ask through OmegaConf resolvers (`${retina_seg.on_gpu:...}` and the others), which every entrypoint
and every composing path registers with ``register_resolvers`` before Hydra composes."""

import os
import platform
from pathlib import Path

from omegaconf import OmegaConf

# Loader workers when the node does not say how many CPUs the task has: beyond about this many, more workers
# only cost memory for one GPU's worth of 512x512 batches.
MAX_DEFAULT_WORKERS = 8

# CPU flags (Linux's /proc/cpuinfo) of bf16 arithmetic in hardware: AMX tiles (Intel Sapphire Rapids and later)
# or AVX-512 BF16 (e.g. AMD Zen 4). Without either, bf16 autocast is emulated and slower than fp32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Where Linux describes the CPU and its flags.
CPUINFO = Path("/proc/cpuinfo")


def on_gpu(accelerator: str) -> bool:
    """True when ``trainer.accelerator`` puts the run on a CUDA GPU ("auto" asks the machine it runs on)."""
    if str(accelerator) in ("gpu", "cuda"):
        return True
    if str(accelerator) == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def loader_workers(accelerator: str) -> int:
    """Data-loader worker processes for a run: none on CPU (they would compete with the training threads
    for the same cores); on a GPU, every CPU of the task but the one the training process needs, as SLURM
    grants them (``SLURM_CPUS_PER_TASK``), else the CPUs this process may use, at most MAX_DEFAULT_WORKERS."""
    if not on_gpu(accelerator):
        return 0
    granted = os.environ.get("SLURM_CPUS_PER_TASK")
    if granted and granted.isdigit():
        return max(0, int(granted) - 1)
    return max(0, min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0)) - 1))


def gpus_per_node(accelerator: str, devices) -> int | None:
    """GPUs a SLURM job asks for: one per device when the run is on GPUs (decided from the config alone,
    since the submitting machine may have none), else none."""
    return int(devices) if str(accelerator) in ("gpu", "cuda") and isinstance(devices, int) else None


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The BF16_CPU_FLAGS this CPU has."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            return []
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split()}
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), written next to every number measured on it."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_precision() -> str:
    """The CPU recipe's precision: bf16 autocast where the CPU computes bf16 in hardware (measured with
    benchmarks/throughput.py, default net, channels_last: 2.3x the fp32 plain loop's images/s on a Xeon with AMX,
    1.67x channels_last fp32 on an AMD EPYC with AVX-512 BF16 and no AMX), fp32 elsewhere."""
    return "bf16-mixed" if cpu_bf16_flags() else "32-true"


def register_resolvers() -> None:
    """Let the configs ask for these values (registering again replaces, so any caller may call it)."""
    OmegaConf.register_new_resolver("retina_seg.on_gpu", on_gpu, replace=True)
    OmegaConf.register_new_resolver("retina_seg.cpu_precision", cpu_precision, replace=True)
    OmegaConf.register_new_resolver("retina_seg.loader_workers", loader_workers, replace=True)
    OmegaConf.register_new_resolver("retina_seg.gpus_per_node", gpus_per_node, replace=True)
