"""`retina-seg-eval`: evaluate a checkpoint on one split and write the same metrics a run writes."""
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from .config import CONF_DIR  # noqa: E402
from .deprecations import check_augmentation_key, warn_deprecated_names  # noqa: E402

log = logging.getLogger(__name__)
SPLITS = ("val", "test")
EXIT_UNUSABLE = 2  # the checkpoint, a setting or the data cannot be used (as for retina-seg-predict)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> float:
    from .config import ConfigError
    from .data.errors import DataError
    from .training.checkpoints import CheckpointError
    from .training.evaluation import evaluate, score_second_observer

    warn_deprecated_names(HydraConfig.get())
    if cfg.split not in SPLITS:
        raise SystemExit(f"split={cfg.split!r} is not one of {SPLITS}")
    output_dir = Path(cfg.paths.output_dir)  # Hydra's output folder unless paths.output_dir moves it
    try:
        check_augmentation_key(cfg)
        record = score_second_observer(cfg, output_dir) if cfg.second_observer else evaluate(cfg, output_dir)
    except (CheckpointError, ConfigError, DataError) as error:
        print(f"retina-seg-eval: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_UNUSABLE) from None
    how = "second observer" if cfg.second_observer else f"threshold {record['threshold']:.3f}"
    log.info("%s_IoU=%.4f, %s (%s)", cfg.split, record[f"{cfg.split}_IoU"], how, output_dir)
    return record[f"{cfg.split}_IoU"]


if __name__ == "__main__":
    main()
