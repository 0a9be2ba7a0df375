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


def compose_with_hydra(overrides: list[str], config_name: str = "train", config_dir: str | None = None):
    """The full config (hydra node included), from conf/ or from another folder (sweeps/) with conf/ on the
    search path."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from retina_seg.config import CONF_DIR

    config_dir = config_dir or CONF_DIR
    search = [] if config_dir == CONF_DIR else [f"hydra.searchpath=[file://{CONF_DIR}]"]
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=[*search, *overrides], return_hydra_config=True)


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
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
