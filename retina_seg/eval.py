"""`retina-seg-eval`: evaluate a checkpoint on one split and write the same metrics a run writes."""
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from .config import CONF_DIR  # noqa: E402

log = logging.getLogger(__name__)
SPLITS = ("val", "test")
EXIT_UNUSABLE = 2  # the checkpoint, a setting or the data cannot be used (as for retina-seg-predict)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> float:
    from .config import ConfigError
    from .data.errors import DataError
    from .records.checkpoint import CheckpointError
    from .evaluation.checkpoint_eval import evaluate, score_second_observer

    if cfg.split not in SPLITS:
        raise SystemExit(f"split={cfg.split!r} is not one of {SPLITS}")
    output_dir = Path(cfg.paths.output_dir)  # Hydra's output folder unless paths.output_dir moves it
    try:
        record = score_second_observer(cfg, output_dir) if cfg.second_observer else evaluate(cfg, output_dir)
    except (CheckpointError, ConfigError, DataError) as error:
        print(f"retina-seg-eval: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_UNUSABLE) from None
    scores = {key: value for key, value in record.items() if key.startswith(f"{cfg.split}_IoU") and "_all" not in key}
    log.info("%s (%s)", ", ".join(f"{key}={value:.4f}" for key, value in scores.items()), output_dir)
    return next(iter(scores.values()))


if __name__ == "__main__":
    main()
