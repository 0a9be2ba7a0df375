"""The human baseline on the Kaggle test split: DRIVE's second observer, scored like a model under each protocol.

The Kaggle test masks are DRIVE's first-observer masks resized to 512x512 with OpenCV's bilinear interpolation:
this script checks that on every test image (it stops, naming the file, where one differs). DRIVE's second
observer resized the same way is therefore a second person's annotation on the very grid, with the same grey
edges, that the Kaggle scores are measured on. Under the reference's protocol its score is the agreement between
two people in the measurement behind the reference's published 0.701.

--observer first scores the first observer against the Kaggle masks made from it (1.0 under every protocol when
the grid is the Kaggle set's): a check of the pipeline, not a baseline.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, save_results
from retina_seg.data.errors import DataError
from retina_seg.data.fov import detect_fov
from retina_seg.data.io import MASK_RULES, binarise, read_image, read_mask
from retina_seg.data.layouts import drive_samples, kaggle_samples
from retina_seg.records.protocols import PER_IMAGE_SCORES, PROTOCOLS, Protocol
from retina_seg.scoring.agreement import MaskAgreement

KAGGLE_SIDE = 512
# The rule a strict score binarises with when no run sets one: the data config's default (conf/data).
DEFAULT_MASK_RULE = "half"


def on_kaggle_grid(vessels: np.ndarray) -> np.ndarray:
    """A DRIVE vessel mask (bool) as the Kaggle set stores one: 0/255, resized bilinearly to 512x512, so its
    vessel edges turn grey."""
    values = vessels.astype(np.uint8) * 255
    return cv2.resize(values, (KAGGLE_SIDE, KAGGLE_SIDE), interpolation=cv2.INTER_LINEAR)


def kaggle_pairs(drive_root: Path, kaggle_root: Path, observer: str) -> list[dict]:
    """Per Kaggle test image: the chosen DRIVE observer on the Kaggle grid, the Kaggle mask's path and the FOV
    detected on the Kaggle photograph (as the Kaggle source detects it). Raises DataError when the first observer
    on the grid is not the Kaggle mask under every mask rule."""
    drive, kaggle = drive_samples(drive_root, "test"), kaggle_samples(kaggle_root, "test")
    if len(drive) != len(kaggle):
        raise DataError(
            f"{drive_root} has {len(drive)} DRIVE test photographs, {kaggle_root} {len(kaggle)} test images"
        )
    pairs = []
    for photograph, image in zip(drive, kaggle):
        first = on_kaggle_grid(read_mask(photograph.mask))
        for rule in MASK_RULES:
            if not np.array_equal(binarise(first, rule), read_mask(image.mask, rule)):
                raise DataError(
                    f"{image.mask}: not {photograph.mask} resized to {KAGGLE_SIDE}x{KAGGLE_SIDE} bilinearly "
                    f"(they differ under mask_rule={rule}), so the two sets' observers cannot be compared"
                )
        if observer == "first":
            annotation = first
        elif photograph.second_mask is None:
            raise DataError(f"{drive_root}: no second-observer mask for DRIVE test photograph {photograph.image.name}")
        else:
            annotation = on_kaggle_grid(read_mask(photograph.second_mask))
        pairs.append({"annotation": annotation, "truth": image.mask, "fov": detect_fov(read_image(image.image))})
    return pairs


def score(pairs: list[dict], protocol: Protocol) -> dict[str, float]:
    """IoU and Dice of the annotations against the Kaggle masks, measured as ``protocol`` defines: its mask
    rule for both, its region, its averaging (a binary annotation needs no threshold)."""
    rule = protocol.mask_rule or DEFAULT_MASK_RULE
    agreement = MaskAgreement(centrelines=False)
    for pair in pairs:
        agreement.add(binarise(pair["annotation"], rule), read_mask(pair["truth"], rule), pair["fov"])
    values = agreement.scores(protocol.region, protocol.averaging)
    return {name: values[name] for name in PER_IMAGE_SCORES}


def measured_as(protocol: Protocol) -> str:
    """The protocol as ``score`` applies it to binary annotations (no threshold to choose)."""
    region = "inside the FOV (detected)" if protocol.region == "fov" else "all pixels"
    averaging = "pixels pooled over the split" if protocol.averaging == "pooled" else "mean of per-image scores"
    return f"masks binarised {protocol.mask_rule or DEFAULT_MASK_RULE}, {region}, {averaging}"


def human_scores(drive_root: Path, kaggle_root: Path, observer: str = "second") -> dict[str, dict[str, float]]:
    """{protocol name: {"IoU": ..., "Dice": ...}} for every protocol of retina_seg.records.protocols."""
    pairs = kaggle_pairs(drive_root, kaggle_root, observer)
    return {name: score(pairs, protocol) for name, protocol in PROTOCOLS.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--drive-root", type=Path, default=Path("../shared/data/DRIVE"))
    parser.add_argument("--kaggle-root", type=Path, default=Path("../shared/data/retina-blood-vessel"))
    parser.add_argument("--observer", choices=("second", "first"), default="second")
    args = parser.parse_args(argv)  # --quick changes nothing: the whole split takes seconds
    print(f"machine: {machine_line()}", flush=True)
    try:
        scores = human_scores(args.drive_root, args.kaggle_root, args.observer)
    except DataError as error:
        fail(str(error))
    rows = [
        [name, measured_as(PROTOCOLS[name]), *(f"{values[s]:.4f}" for s in PER_IMAGE_SCORES)]
        for name, values in scores.items()
    ]
    print(f"\nDRIVE's {args.observer} observer against the Kaggle test masks (20 images, 512x512):")
    print(markdown_table(["protocol", "measured as", *PER_IMAGE_SCORES], rows))
    save_results(args.json, {"observer": args.observer, "scores": scores})
    iou = scores["reference"]["IoU"]
    print(f"{args.observer} observer's test IoU on the Kaggle grid, the reference's protocol: {iou:.4f}")


if __name__ == "__main__":
    main()
