"""`retina-seg-export`: a checkpoint to torch.export's .pt2, ONNX, safetensors and TorchScript, with a model card.
Exit codes (retina_seg/exit_codes.py): 2 for a bad config or checkpoint; 1 when an export cannot be made or does
not match the PyTorch model."""

import logging

import hydra
from omegaconf import DictConfig

from .config import CONF_DIR
from .exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, fail, refusals_exit_bad_input
from .launch.resources import register_resolvers

log = logging.getLogger(__name__)
register_resolvers()  # before @hydra.main composes: the configs ask the machine and the job through them


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def export_model(cfg: DictConfig) -> None:
    from .config import ConfigError
    from .inference.export import ExportError, export_checkpoint
    from .inference.settings import export_settings
    from .records.checkpoint import CheckpointError

    try:
        settings = export_settings(cfg)
        card = export_checkpoint(settings)
    except (CheckpointError, ConfigError) as error:
        fail("retina-seg-export", error, EXIT_BAD_INPUT)
    except ExportError as error:
        fail("retina-seg-export", error, EXIT_FAILED)
    log.info("Exported %s and the model card to %s", ", ".join(card["exports"]), settings.output)


main = refusals_exit_bad_input(export_model)

if __name__ == "__main__":
    main()
