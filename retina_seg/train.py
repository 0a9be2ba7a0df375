"""`retina-seg-train`: the one Hydra entrypoint for training runs and sweeps."""
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from .config import CONF_DIR, ConfigError  # noqa: E402
from .deprecations import warn_deprecated_names  # noqa: E402

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train one run into Hydra's output folder; returns test IoU (or val IoU) for sweepers."""
    from .data.errors import DataError
    from .training.checkpoints import CheckpointError
    from .training.pipeline import train_job
    from .utils.folder_lock import FolderLockedError

    hydra_cfg = HydraConfig.get()
    warn_deprecated_names(hydra_cfg)
    # Hydra's output folder unless paths.output_dir moves the run: checkpoints and metrics.json stay together.
    output_dir = Path(cfg.paths.output_dir)
    try:
        record = train_job(cfg, hydra_cfg, output_dir)
    except (CheckpointError, ConfigError, DataError, FolderLockedError) as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the launcher reports every failed job of the sweep (its metrics.json says failed)
        print(f"retina-seg-train: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("Run %s finished: val_IoU=%s test_IoU=%s (%s)", record["job_id"], _fmt(record.get("val_IoU")),
             _fmt(record.get("test_IoU")), output_dir)
    return record.get("test_IoU", record.get("val_IoU"))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    main()
