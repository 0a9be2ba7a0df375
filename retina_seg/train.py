"""`retina-seg-train`: the one Hydra entrypoint for training runs and sweeps.
Exit codes (retina_seg/exit_codes.py): 2 for a bad config, checkpoint or data set; 1 for a run that failed, a
run folder held by another run, or a full disk (one line naming the file and the filesystem)."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .config import CONF_DIR, ConfigError
from .deprecations import warn_deprecated_names
from .exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, fail, refusals_exit_bad_input
from .launch.resources import register_resolvers

log = logging.getLogger(__name__)
register_resolvers()  # before @hydra.main composes: the configs ask the machine and the job through them


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def train_run(cfg: DictConfig) -> float | None:
    """Train one run into Hydra's output folder; returns the value of its objective (``optimized_metric``, a
    validation metric) to the sweeper: test metrics are never used to choose anything."""
    from .data.errors import DataError
    from .records.checkpoint import CheckpointError
    from .records.objective import objective_of
    from .training.pipeline import train_job
    from .utils.disk_space import DiskFullError
    from .utils.folder_lock import FolderLockedError
    from .utils.log_lines import leave_lightning_lines_to_root

    leave_lightning_lines_to_root()  # Lightning is imported by now, and Hydra has configured the root logger
    hydra_cfg = HydraConfig.get()
    warn_deprecated_names(hydra_cfg)
    # Hydra's output folder unless paths.output_dir moves the run: checkpoints and metrics.json stay together.
    output_dir = Path(cfg.paths.output_dir)
    try:
        record = train_job(cfg, hydra_cfg, output_dir)
    except (CheckpointError, ConfigError, DataError, FolderLockedError, DiskFullError) as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the launcher reports every failed job of the sweep (its metrics.json says failed)
        bad_input = isinstance(error, CheckpointError | ConfigError | DataError)
        fail("retina-seg-train", error, EXIT_BAD_INPUT if bad_input else EXIT_FAILED)
    log.info(
        "Run %s finished: val_IoU=%s test_IoU=%s (%s)",
        record["job_id"],
        _fmt(record.get("val_IoU")),
        _fmt(record.get("test_IoU")),
        output_dir,
    )
    return objective_of(cfg).value_in(record)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


main = refusals_exit_bad_input(train_run)

if __name__ == "__main__":
    main()
