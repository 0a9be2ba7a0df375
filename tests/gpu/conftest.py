"""The GPU path's tests run on the device named by RETINA_SEG_CHECK_DEVICE (cuda, or cpu for the dry run).

`python -m benchmarks.gpu_check` sets it (cuda on a GPU machine, cpu with --cpu-dry-run, which CI runs), so the
suite is exercised on every commit without a GPU, and on CUDA wherever the check is run on one. Without the
variable they are still collected, and skipped with the reason, so a plain pytest run shows they exist.
"""

import os
from pathlib import Path

import pytest
import torch

DEVICE_VARIABLE = "RETINA_SEG_CHECK_DEVICE"
HERE = Path(__file__).resolve().parent
NO_DEVICE_REASON = (
    f"GPU-path tests run on a device named by {DEVICE_VARIABLE} (python -m benchmarks.gpu_check); "
    f"set {DEVICE_VARIABLE}=cpu to dry-run them"
)


def pytest_collection_modifyitems(config, items):
    """Every test under tests/gpu is `slow`, and skipped when no device is named."""
    named = bool(os.environ.get(DEVICE_VARIABLE))
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)
            if not named:
                item.add_marker(pytest.mark.skip(reason=NO_DEVICE_REASON))


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
