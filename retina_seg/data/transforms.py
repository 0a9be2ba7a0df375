"""albumentations pipelines built from the augmentation config, applied to image, mask and FOV together."""

from collections.abc import Mapping

import albumentations as A


def build_pipeline(transforms: Mapping | None, normalize: A.BasicTransform | None) -> A.Compose:
    """Compose the named transforms in config order, then the normalisation; FOV is moved like the mask."""
    steps = [t for t in (transforms or {}).values() if t is not None]
    if normalize is not None:
        steps.append(normalize)
    return A.Compose(steps, additional_targets={"fov": "mask"})
