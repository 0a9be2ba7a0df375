"""`retina-seg-train`: the one Hydra entrypoint for training runs and sweeps."""
import logging
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from .config import CONF_DIR, apply_hparams_file, validate_config  # noqa: E402
from .sweeps.run_settings import apply_epoch_scale, limit_threads  # noqa: E402

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train one run into Hydra's output folder; returns test IoU (or val IoU) for sweepers."""
    from .training.pipeline import train

    apply_hparams_file(cfg)
    hydra_cfg = HydraConfig.get()
    apply_epoch_scale(cfg)
    limit_threads(hydra_cfg.launcher)
    validate_config(cfg)
    # Hydra's output folder unless paths.output_dir moves the run: checkpoints and metrics.json stay together.
    output_dir = Path(cfg.paths.output_dir)
    record = train(cfg, output_dir, hydra_cfg.job.get("id"))
    log.info("Run %s finished: val_IoU=%s test_IoU=%s (%s)", record["job_id"], _fmt(record.get("val_IoU")),
             _fmt(record.get("test_IoU")), output_dir)
    return record.get("test_IoU", record.get("val_IoU"))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    main()
