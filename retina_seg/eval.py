"""`retina-seg-eval`: evaluate a checkpoint on one split and write the same metrics a run writes.
Exit codes: retina_seg/exit_codes.py (2 for a bad config, checkpoint or data set)."""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .config import CONF_DIR
from .deprecations import check_augmentation_key, warn_deprecated_names
from .exit_codes import EXIT_BAD_INPUT, fail, refusals_exit_bad_input
from .launch.resources import register_resolvers

log = logging.getLogger(__name__)
register_resolvers()  # before @hydra.main composes: the configs ask the machine and the job through them


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def evaluate_checkpoint(cfg: DictConfig) -> float:
    from .config import ConfigError
    from .config_rules import check_config
    from .config_schemas import EVAL_RULES
    from .data.errors import DataError
    from .evaluation.checkpoint_eval import evaluate, score_second_observer
    from .records.checkpoint import CheckpointError
    from .utils.log_lines import leave_lightning_lines_to_root

    leave_lightning_lines_to_root()  # Lightning is imported by now, and Hydra has configured the root logger
    warn_deprecated_names(HydraConfig.get())
    output_dir = Path(cfg.paths.output_dir)  # Hydra's output folder unless paths.output_dir moves it
    try:
        check_config(cfg, EVAL_RULES)
        check_augmentation_key(cfg)
        record = score_second_observer(cfg, output_dir) if cfg.second_observer else evaluate(cfg, output_dir)
    except (CheckpointError, ConfigError, DataError) as error:
        fail("retina-seg-eval", error, EXIT_BAD_INPUT)
    scores = {key: value for key, value in record.items() if key.startswith(f"{cfg.split}_IoU") and "_all" not in key}
    log.info("%s (%s)", ", ".join(f"{key}={value:.4f}" for key, value in scores.items()), output_dir)
    return next(iter(scores.values()))


main = refusals_exit_bad_input(evaluate_checkpoint)

if __name__ == "__main__":
    main()
