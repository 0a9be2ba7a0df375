"""Validation overlays in Comet: what a val_IoU number looks like, without opening the run folder."""

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image

from ..config import ConfigError
from .comet import CometRunLogger


class ValidationOverlays(pl.Callback):
    """Every ``every_n_epochs`` epochs, the first ``images`` validation images as image | truth | prediction
    (at the module's threshold), logged with the epoch as step.

    Cheap: one extra forward pass of a few images, on rank 0, during fitting only.
    """

    def __init__(self, every_n_epochs: int = 5, images: int = 2):
        for key, value in (("every_n_epochs", every_n_epochs), ("images", images)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"callbacks.comet_overlays.{key}={value!r} must be an integer >= 1")
        self.every_n_epochs, self.images = every_n_epochs, images
        self.logged = 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.logged = 0

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        epoch = trainer.current_epoch
        if (
            self.logged >= self.images
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
            or (epoch + 1) % self.every_n_epochs
            or not trainer.is_global_zero
        ):
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, CometRunLogger)]
        if not loggers:
            return
        for panel in overlay_panels(pl_module, batch, self.images - self.logged):
            for logger in loggers:
                logger.log_image(panel, name=f"val_overlay_{self.logged}", step=epoch)
            self.logged += 1


def overlay_panels(pl_module: pl.LightningModule, batch: dict, count: int) -> list[Image.Image]:
    """One RGB picture per image: the (rescaled) image, the true vessels, the predicted vessels."""
    images = batch["image"][:count]
    with torch.no_grad():
        predicted = (pl_module(images) >= pl_module.threshold).float()
    return [
        Image.fromarray(np.concatenate([_displayable(image), _binary(mask), _binary(pred)], axis=1))
        for image, mask, pred in zip(images, batch["mask"][:count], predicted)
    ]


def _displayable(image: torch.Tensor) -> np.ndarray:
    """[C,H,W] normalised floats -> [H,W,3] uint8, stretched to the image's own range."""
    rgb = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
    low, high = rgb.min(), rgb.max()
    scaled = (rgb - low) / (high - low).clamp_min(1e-8) * 255
    return scaled.permute(1, 2, 0).to(torch.uint8).cpu().numpy()


def _binary(mask: torch.Tensor) -> np.ndarray:
    """[1,H,W] mask -> [H,W,3] uint8: vessels white on black."""
    return ((mask[0] > 0.5).to(torch.uint8) * 255).unsqueeze(-1).expand(-1, -1, 3).cpu().numpy()
