"""`retina-seg-predict`: vessel masks, probability maps and overlays for any fundus photographs.
Exit codes (retina_seg/exit_codes.py): 0 every input predicted; 1 some inputs failed (listed); 2 nothing could
run (a bad config, checkpoint or input path, an output folder holding files, or inputs that all failed)."""

import logging
import sys

import hydra
from omegaconf import DictConfig

from .config import CONF_DIR
from .exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, fail, refusals_exit_bad_input
from .launch.resources import register_resolvers

log = logging.getLogger(__name__)
register_resolvers()  # before @hydra.main composes: the configs ask the machine and the job through them


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def predict_photographs(cfg: DictConfig) -> None:
    from .config import ConfigError
    from .data.errors import DataError
    from .inference.run import predict_files
    from .inference.settings import predict_settings
    from .records.checkpoint import CheckpointError

    try:
        summary = predict_files(predict_settings(cfg))
    except (CheckpointError, ConfigError, DataError) as error:
        fail("retina-seg-predict", error, EXIT_BAD_INPUT)
    log.info(
        "Predicted %d image(s) in %.1f s (%s images/s) into %s",
        summary["predicted"],
        summary["wall_time_s"],
        summary["images_per_s"],
        cfg.output,
    )
    if summary["overall"]:
        log.info("Overall IoU %.4f, Dice %.4f", summary["overall"]["IoU"], summary["overall"]["Dice"])
    if summary["failed"]:
        lines = "\n".join(f"  {failure['error']}" for failure in summary["failed"])
        print(f"retina-seg-predict: {len(summary['failed'])} input(s) failed:\n{lines}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED if summary["predicted"] else EXIT_BAD_INPUT)


main = refusals_exit_bad_input(predict_photographs)

if __name__ == "__main__":
    main()
