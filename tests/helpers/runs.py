"""Configs and entrypoint calls for a run: the tiny synthetic run, Hydra composition, the CLI as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

TINY_RUN = [
    "loss=bce_dice",
    "data.source.n_train=4",
    "data.source.n_val=2",
    "data.source.n_test=2",
    "data.source.height=64",
    "data.source.width=64",
    "data.batch_size=2",
    "trainer.max_epochs=2",
    "callbacks=minimal",
    "trainer.enable_model_summary=false",
]


def compose(overrides: list[str], output_dir: Path | None = None, config_name: str = "train"):
    """The config an entrypoint runs with, its output folder pinned: train's settled and checked as
    `retina-seg-train` settles it (retina_seg/training/run_config.py), the others' as Hydra hands them over."""
    from retina_seg.launch.composition import compose_config, run_config
    from retina_seg.training.run_config import train_config

    if config_name == "train":
        return train_config(overrides, output_dir)
    pinned = [f"paths.output_dir={output_dir}"] if output_dir is not None else []
    return run_config(compose_config(config_name, [*overrides, *pinned]))


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run an entrypoint as a user would (python -m ...), capturing its output and exit code."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
