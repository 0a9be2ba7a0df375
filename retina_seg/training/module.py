"""The LightningModule: trains the U-Net, measures dataset-level vessel metrics, holds the threshold."""

from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from ..models.unet import flip_averaged, vessel_probability
from ..records.checkpoint import PAYLOAD_KEY, RunInfo
from ..records.protocols import PER_IMAGE_SCORES, STRICT, Protocol
from ..scoring.centrelines import CentrelineDice
from ..scoring.per_image import ImageScoreTable, PerImageScores
from ..scoring.pooled import VesselMetrics, summarize


class VesselSegmentationModule(pl.LightningModule):
    """Fit with the configured loss; validate/test with histogram metrics over the whole split."""

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
        threshold: float | None = None,
        flip_tta: bool = False,
        channels_last: bool = True,
        run_info: RunInfo | None = None,
        per_image_protocols: Sequence[Protocol] = (),
        source_names: Sequence[str] = (),
    ):
        """``per_image_protocols``: the test split is also scored under these (its masks binarised by their rule,
        retina_seg.records.protocols.protocols_of_the_test_loop). ``source_names``: the sets trained on together
        (a batch's ``source`` indexes them); val and test are then scored per source too (val_IoU_<name>)."""
        super().__init__()
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler", "run_info", "per_image_protocols"])
        self.run_info = run_info  # the checkpoint payload; None for a module that only evaluates
        self.net, self.loss = net, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.fixed_threshold = threshold
        self.threshold = 0.5 if threshold is None else float(threshold)
        self.flip_tta, self.channels_last = flip_tta, channels_last
        self.val_metrics, self.test_metrics = VesselMetrics(), VesselMetrics()
        self.source_names = tuple(source_names)
        self.val_source_metrics = nn.ModuleList(VesselMetrics() for _ in self.source_names)
        self.test_source_metrics = nn.ModuleList(VesselMetrics() for _ in self.source_names)
        # Topology needs binary masks, so clDice waits for the test split, when the threshold is settled.
        self.test_centrelines = CentrelineDice()
        self.per_image_protocols = tuple(per_image_protocols)
        self.test_per_image = nn.ModuleList(PerImageScores(p.threshold, p.region) for p in self.per_image_protocols)
        # Each test image's own scores under every protocol the test measures (test_image_scores).
        self.image_table_protocols = (STRICT, *self.per_image_protocols)
        self.test_image_tables = nn.ModuleList(ImageScoreTable(p.region) for p in self.image_table_protocols)
        self.test_image_rows: list[dict[str, Any]] = []
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Vessel probabilities [B,1,H,W]."""
        image = self._layout(image)
        return flip_averaged(self.net, image) if self.flip_tta else vessel_probability(self.net(image))

    def _layout(self, image: torch.Tensor) -> torch.Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.channels_last else image

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.net(self._layout(batch["image"]))
        loss = self.loss(logits, batch["mask"], batch["fov"])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(logits))
        return loss

    def _evaluate(
        self, batch: dict, metrics: VesselMetrics, split: str, per_source: Sequence[VesselMetrics] = ()
    ) -> torch.Tensor:
        image = self._layout(batch["image"])
        logits = self.net(image)
        probs = flip_averaged(self.net, image) if self.flip_tta else vessel_probability(logits)
        # A photograph evaluated at the training scale (SegmentationDataset's ScaleRule) is scored at its own size.
        logits, probs = _to_size(logits, batch["mask"]), _to_size(probs, batch["mask"]).clamp(0, 1)
        loss = self.loss(logits, batch["mask"], batch["fov"])
        # Nothing outside the field of view is a vessel (the loss never sees it; the predictor zeroes it too),
        # so the all-pixel scores compare with whole-image numbers such as the reference's.
        probs = probs * batch["fov"]
        metrics.update(probs, batch["mask"], batch["fov"])
        for index, source_metrics in enumerate(per_source):
            mine = batch["source"] == index
            if mine.any():
                source_metrics.update(probs[mine], batch["mask"][mine], batch["fov"][mine])
        self.log(f"{split}_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(logits))
        return probs

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val", self.val_source_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        probs = self._evaluate(batch, self.test_metrics, "test", self.test_source_metrics)
        self.test_centrelines.update(self.test_metrics.predicted(probs, self.threshold), batch["mask"], batch["fov"])
        for scores in self.test_per_image:
            scores.update(probs, batch["mask"], batch["fov"])
        for protocol, table in zip(self.image_table_protocols, self.test_image_tables):
            table.update(batch["index"], self._predicted(probs, protocol), batch["mask"], batch["fov"])

    def _predicted(self, probs: torch.Tensor, protocol: Protocol) -> torch.Tensor:
        """The vessel map a protocol scores: at the chosen threshold as the pooled scores count it, or above the
        protocol's own fixed threshold as its per-image mean (PerImageScores) does."""
        if protocol.threshold is None:
            return self.test_metrics.predicted(probs, self.threshold)
        return probs > protocol.threshold

    def _publish(self, metrics: VesselMetrics, split: str, per_source: Sequence[VesselMetrics] = ()) -> None:
        """Sum the histograms over DDP ranks once, then log every score at the current threshold: pooled, and
        each source's with its name appended (val_IoU_stare)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for each in (metrics, *per_source):
                each.sync()
        values = summarize(metrics, self.threshold, split)
        headline = f"{split}_IoU"
        self.log(headline, values.pop(headline), prog_bar=True)
        self.log_dict({**values, **self.source_scores(split, self.threshold)})

    def source_scores(self, split: str, threshold: float) -> dict[str, float]:
        """Each source's scores of the split's last epoch at ``threshold``, keys ending in the source's name."""
        per_source = self.val_source_metrics if split == "val" else self.test_source_metrics
        return {
            f"{key}_{name}": value
            for name, metrics in zip(self.source_names, per_source)
            for key, value in summarize(metrics, threshold, split).items()
        }

    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()
        for metrics in self.val_source_metrics:
            metrics.reset()

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()
        for metrics in self.test_source_metrics:
            metrics.reset()
        self.test_centrelines.reset()
        for scores in [*self.test_per_image, *self.test_image_tables]:
            scores.reset()

    def on_validation_epoch_end(self) -> None:
        self._publish(self.val_metrics, "val", self.val_source_metrics)

    def on_test_epoch_end(self) -> None:
        self._publish(self.test_metrics, "test", self.test_source_metrics)
        centrelines = self.test_centrelines.compute()
        self.log_dict({"test_clDice": centrelines["fov"], "test_clDice_all": centrelines["all"]})
        for protocol, metric in zip(self.per_image_protocols, self.test_per_image):
            scores = metric.compute()
            self.log_dict({protocol.key("test", name): scores[name] for name in PER_IMAGE_SCORES})
        # Every rank takes part in gathering the tables; rank 0 writes them (records.run_folder.write_test_images).
        self.test_image_rows = [
            {"protocol": protocol.name, **row}
            for protocol, table in zip(self.image_table_protocols, self.test_image_tables)
            for row in table.compute()
        ]

    def test_image_scores(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The last test's per-image rows (image, protocol, IoU, Dice, clDice), each image named by ``names``, the
        test split's image ids in the order its dataset indexes them."""
        return [{"image": names[row.pop("index")], **row} for row in map(dict, self.test_image_rows)]

    def choose_threshold(self) -> float:
        """After validating the best checkpoint: the threshold that maximises val IoU (unless fixed)."""
        if self.fixed_threshold is None:
            self.threshold = self.val_metrics.best_threshold("IoU", "fov")
        return self.threshold

    def source_thresholds(self) -> dict[str, float]:
        """The threshold each source's validation alone would choose (threshold_<name>): recorded, never used,
        to show how far the cameras trained on together disagree about where a vessel begins."""
        return {
            f"threshold_{name}": metrics.best_threshold("IoU", "fov")
            for name, metrics in zip(self.source_names, self.val_source_metrics)
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Plain data only (no pickled objects): the predictor rebuilds the net from it, weights_only."""
        if self.run_info is not None:
            checkpoint[PAYLOAD_KEY] = self.run_info.with_threshold(self.threshold).to_payload()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.threshold = float(checkpoint.get(PAYLOAD_KEY, {}).get("threshold", self.threshold))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _to_size(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bicubic resize of [B,1,h,w] to the [B,1,H,W] of `like`, as the predictor maps probabilities back
    (data/scale.py to_size; probabilities are clipped to [0, 1] by the caller)."""
    if values.shape[-2:] == like.shape[-2:]:
        return values
    return F.interpolate(values, size=like.shape[-2:], mode="bicubic", align_corners=False)
