"""The GPU path's tests run on the device named by RETINA_SEG_CHECK_DEVICE (cuda, or cpu for the dry run).

They are collected only when that variable is set: `python -m benchmarks.gpu_check` sets it (cuda on a GPU
machine, cpu with --cpu-dry-run, which CI runs), so the suite is exercised on every commit without a GPU,
and on CUDA wherever the check is run on one.
"""

import os

import pytest
import torch

DEVICE_VARIABLE = "RETINA_SEG_CHECK_DEVICE"


@pytest.fixture(scope="session")
def device() -> str:
    name = os.environ[DEVICE_VARIABLE]
    if name == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"{DEVICE_VARIABLE}=cuda but torch {torch.__version__} sees no CUDA device")
    return name


@pytest.fixture(scope="session")
def accelerator(device: str) -> str:
    """trainer.accelerator for the device: Lightning calls CUDA "gpu"."""
    return "gpu" if device == "cuda" else "cpu"
