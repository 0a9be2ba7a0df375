"""Shared fixtures: the real data sets and a briefly trained DRIVE model. Plain helpers are in tests/helpers."""

import os
from pathlib import Path

import pytest

import retina_seg  # noqa: F401,E402  (its import sets NO_ALBUMENTATIONS_UPDATE before any test imports albumentations)
from tests.helpers.environment import SHARED_DATA, require
from tests.helpers.runs import TINY_NET, compose


def pytest_configure(config):
    """Under pytest-xdist (`-n 2`, as .ci/run runs the suite) the workers share the cores: each takes its share of
    torch threads, passed on to the processes it starts, instead of every worker oversubscribing all cores."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """One xdist group per test file, so that a module's fixtures (a trained run, a sweep, a benchmark's quick
    run) are built once, in one worker, not once per worker; tests/slurm is one group (the session's cluster
    serves all its files), and a test may name a group shared across files (the DRIVE model)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            path = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group("slurm_cluster" if path.startswith("tests/slurm/") else path))


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


@pytest.fixture(scope="session")
def chase_db1_root() -> Path:
    root = SHARED_DATA / "CHASE_DB1"
    require((root / "Image_01L.jpg").is_file(), f"CHASE_DB1 not found at {root}")
    return root


# A narrow U-Net (base width 8, a quarter of the default net's convolution work) trained briefly on DRIVE's training
# photographs at their native scale: 120 steps on 192x192 crops, fp32, one-cycle schedule, validated once at the end.
# Measured on an AVX2-only EPYC (84 s to train, against 156 s at base width 16): IoU on DRIVE test 01-03 native 0.618,
# scale-aware minus scale-unaware IoU 0.125 at 2x and 0.308 at 3x (tests/integration/test_scale.py asserts > 0.45 and
# > 0.05). 90 steps on 160x160 crops trained no faster and scored 0.584.
DRIVE_BRIEF_TRAINING = [
    "data=drive",
    "model.base_width=8",
    "augmentation=crops",
    "augmentation.train.crop.height=192",
    "augmentation.train.crop.width=192",
    "loss=bce_dice",
    "scheduler=onecycle",
    "optimizer.lr=2e-3",
    "data.batch_size=8",
    "data.train_repeats=8",
    "trainer.max_epochs=8",
    "trainer.check_val_every_n_epoch=8",
    "callbacks=minimal",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=none",
    "test=false",
    "seed=0",
]


@pytest.fixture(scope="session")
def drive_checkpoint(drive_root, tmp_path_factory) -> Path:
    """The best checkpoint of DRIVE_BRIEF_TRAINING: a model that segments DRIVE-like photographs reasonably,
    for the tests that compare scales."""
    from retina_seg.training.pipeline import train

    out = tmp_path_factory.mktemp("drive_run")
    train(compose([*DRIVE_BRIEF_TRAINING, f"data.root={drive_root}"], out), out, "0")
    return out / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The best checkpoint of one TINY_NET training, shared by the tests that predict, export or evaluate with a
    trained model and assert nothing about its training."""
    from retina_seg.training.pipeline import train

    out = tmp_path_factory.mktemp("tiny_run")
    train(compose(TINY_NET, out), out, "0")
    return out / "checkpoints" / "best.ckpt"
