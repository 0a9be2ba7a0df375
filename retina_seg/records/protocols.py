"""Evaluation protocols: how a split's scores are measured, each defined once here. A protocol's scores have keys
of their own in metrics.json, so numbers measured two ways never share a column (docs/results.md)."""

from dataclasses import dataclass

from ..config import ConfigError


@dataclass(frozen=True)
class Protocol:
    name: str
    mask_rule: str | None  # how masks are binarised; None: the run's own data.source.mask_rule
    threshold: float | None  # None: the checkpoint's, chosen on validation
    region: str  # "fov": inside the field of view; "all": every pixel
    averaging: str  # "pooled": TP/FP/FN summed over the split; "per_image": each image scored, then the mean
    key_suffix: str  # after the metric's name in metrics.json: f"{split}_{score}{key_suffix}"

    def key(self, split: str, score: str) -> str:
        return f"{split}_{score}{self.key_suffix}"

    def describe(self) -> str:
        masks = f"masks binarised {self.mask_rule}" if self.mask_rule else "masks binarised by the run's mask_rule"
        threshold = f"threshold {self.threshold}" if self.threshold is not None else "threshold chosen on validation"
        region = "inside the FOV" if self.region == "fov" else "all pixels"
        averaging = "pixels pooled over the split" if self.averaging == "pooled" else "mean of per-image scores"
        return f"{masks}, {threshold}, {region}, {averaging}"


# Ours: the split's pixels pooled inside the FOV, at the threshold chosen on validation.
STRICT = Protocol("strict", None, None, "fov", "pooled", "")
# The reference project's test.py: every non-zero mask pixel a vessel, each image's micro IoU at 0.5 over all
# pixels (batch size 1), averaged over the images.
REFERENCE = Protocol("reference", "nonzero", 0.5, "all", "per_image", "_reference_protocol")
PROTOCOLS = {protocol.name: protocol for protocol in (STRICT, REFERENCE)}
# The scores a per-image protocol reports.
PER_IMAGE_SCORES = ("IoU", "Dice")


def protocols_of_the_test_loop(mask_rule: str) -> tuple[Protocol, ...]:
    """The per-image protocols a run whose masks are binarised by ``mask_rule`` also measures while testing: those
    with a fixed threshold and that same mask rule (the reference's, for a run trained on masks > 0)."""
    per_image = (p for p in PROTOCOLS.values() if p.averaging == "per_image" and p.threshold is not None)
    return tuple(p for p in per_image if p.mask_rule == mask_rule)


def protocol_named(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ConfigError(f"invalid config: protocols names {name!r}, which is not one of {list(PROTOCOLS)}")
    return PROTOCOLS[name]
