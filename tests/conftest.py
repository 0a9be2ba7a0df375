"""Shared fixtures: where the real data lives, and the rule that real parts fail (not skip) in CI."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RETINA_SEG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

import retina_seg  # noqa: F401,E402  (its import sets NO_ALBUMENTATIONS_UPDATE before any test imports albumentations)

# tests/gpu runs through benchmarks/gpu_check.py, which names the device (tests/gpu/conftest.py).
collect_ignore = [] if os.environ.get("RETINA_SEG_CHECK_DEVICE") else ["gpu"]


def require(condition: bool, reason: str) -> None:
    """Skip outside CI, fail inside CI: a missing real part must never pass silently there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kaggle_root() -> Path:
    root = SHARED_DATA / "retina-blood-vessel"
    require((root / "train" / "image").is_dir(), f"Kaggle retina set not found at {root}")
    return root


@pytest.fixture(scope="session")
def drive_root() -> Path:
    root = SHARED_DATA / "DRIVE"
    require((root / "training" / "images").is_dir(), f"DRIVE not found at {root}")
    return root


@pytest.fixture(scope="session")
def stare_root() -> Path:
    root = SHARED_DATA / "STARE"
    require((root / "images").is_dir(), f"STARE not found at {root}")
    return root


# A small U-Net trained briefly on DRIVE's training photographs at their native scale: 120 steps on 192x192 crops,
# bf16, one-cycle schedule, validated once at the end (45 s on 2 idle cores, val IoU about 0.52).
DRIVE_BRIEF_TRAINING = [
    "data=drive", "augmentation=crops", "augmentation.train.crop.height=192",
    "augmentation.train.crop.width=192", "loss=bce_dice", "scheduler=onecycle", "optimizer.lr=2e-3",
    "data.batch_size=8", "data.train_repeats=8", "trainer.precision=bf16-mixed", "trainer.max_epochs=8",
    "trainer.check_val_every_n_epoch=8", "callbacks=minimal", "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false", "logger=none", "test=false", "seed=0",
]


@pytest.fixture(scope="session")
def drive_checkpoint(drive_root, tmp_path_factory) -> Path:
    """The best checkpoint of DRIVE_BRIEF_TRAINING: a model that segments DRIVE-like photographs reasonably,
    for the tests that compare scales and the cross-dataset benchmark's quick mode."""
    from retina_seg.training.pipeline import train

    out = tmp_path_factory.mktemp("drive_run")
    train(compose([*DRIVE_BRIEF_TRAINING, f"data.root={drive_root}"], out), out, "0")
    return out / "checkpoints" / "best.ckpt"


TINY_RUN = [
    "loss=bce_dice",
    "data.source.n_train=4", "data.source.n_val=2", "data.source.n_test=2",
    "data.source.height=64", "data.source.width=64", "data.batch_size=2",
    "trainer.max_epochs=2", "callbacks=minimal", "trainer.enable_model_summary=false",
]


def compose(overrides: list[str], output_dir: Path | None = None, config_name: str = "train"):
    """Compose a real config from conf/ the way the entrypoint does, with the output folder pinned."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from retina_seg.config import CONF_DIR

    pinned = [f"paths.output_dir={output_dir}"] if output_dir is not None else []
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=[*overrides, *pinned])


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run an entrypoint as a user would (python -m ...), capturing its output and exit code."""
    import subprocess
    import sys

    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
