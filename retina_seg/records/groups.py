"""Which runs are replicates of one setting: the group key, defined once for the report and for Comet.

Two runs belong to one group when their resolved configs (metrics.json ``config``) are equal once the replicate
keys (``seed`` unless the user names others) and the per-run bookkeeping keys are left out. Bookkeeping keys
differ from run to run without being a setting: where the run writes (``paths.*``, output and checkpoint
folders), how it resumes, which reference job or hparams file it was launched from, how it is tracked
(``logger.*``) and what the console shows. The key is a short hash of what is left, so a Comet experiment, whose
parameters are the same flattened config with values as text, gets the same key as its run folder.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# The seed, and the split seed of the on-disk data sets, which is ${seed} unless set (conf/data/*.yaml): another
# seed also draws another validation split, and both are the replicate's chance, not its setting.
DEFAULT_REPLICATE_KEYS = ("seed", "data.source.split_seed")
# Whole sections that are bookkeeping, and top-level keys that are.
BOOKKEEPING_SECTIONS = frozenset({"paths", "hydra", "logger"})
BOOKKEEPING_KEYS = frozenset(
    {
        "task_name",
        "resume",
        "skip_completed",
        "hparams_file",
        "reference_job_id",
        "trainer.enable_progress_bar",
        "trainer.enable_model_summary",
        "callbacks.progress_bar",
    }
)
# Leaf names that hold a folder of this run, wherever they sit in the config.
FOLDER_LEAVES = frozenset({"output_dir", "run_dir", "default_root_dir", "dirpath", "save_dir", "log_dir"})
# What tracking logs beside the config (CometRunLogger): never part of the key.
SWEEP_PARAMETER, GROUP_PARAMETER = "sweep", "group_key"
TRACKING_PARAMETERS = frozenset({SWEEP_PARAMETER, GROUP_PARAMETER})
KEY_LENGTH = 10


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"optimizer.lr": ...}: the keys users override on the command line."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def is_bookkeeping(key: str) -> bool:
    """A key that differs per run without being a setting (see the module docstring)."""
    return (
        key in BOOKKEEPING_KEYS
        or key in TRACKING_PARAMETERS
        or key.split(".", 1)[0] in BOOKKEEPING_SECTIONS  # the section itself too: logger=none leaves "logger": {}
        or key.rsplit(".", 1)[-1] in FOLDER_LEAVES
    )


def settings(flat_config: Mapping[str, Any], replicate_keys: Iterable[str] = DEFAULT_REPLICATE_KEYS) -> dict[str, Any]:
    """The flattened config without the replicate keys (and anything under them) and the bookkeeping keys."""
    left_out = tuple(replicate_keys)
    return {
        key: value
        for key, value in flat_config.items()
        if not is_bookkeeping(key) and not any(key == r or key.startswith(f"{r}.") for r in left_out)
    }


def group_key(config: Mapping[str, Any], replicate_keys: Iterable[str] = DEFAULT_REPLICATE_KEYS) -> str:
    """A short hash of the run's settings; ``config`` nested (metrics.json) or flattened (Comet parameters).

    Values are hashed as text, since Comet keeps a parameter such as ``{}`` or a list as its text."""
    kept = settings(flatten_config(config), replicate_keys)
    text = json.dumps({key: str(value) for key, value in kept.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]
