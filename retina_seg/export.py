"""`retina-seg-export`: a checkpoint to TorchScript, ONNX and safetensors, with a model card."""
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from .config import CONF_DIR  # noqa: E402

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    from .config import ConfigError
    from .inference.export import ExportError, export_checkpoint
    from .inference.settings import export_settings
    from .records.checkpoint import CheckpointError

    try:
        settings = export_settings(cfg)
        card = export_checkpoint(settings)
    except (CheckpointError, ConfigError, ExportError) as error:
        print(f"retina-seg-export: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("Exported %s and the model card to %s", ", ".join(card["exports"]), settings.output)


if __name__ == "__main__":
    main()
