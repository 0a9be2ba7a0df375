"""How the cameras differ: brightness, colour, contrast, sharpness, noise and annotated vessel fraction of each set's
photographs, measured inside the FOV at training's geometry for data.fov_diameter=512 (retina_seg/data/geometry.py).

The camera augmentation (conf/augmentation/camera.yaml) takes its ranges from this table: each photometric transform
spans the spread between the sets, so a photograph of one camera, augmented, looks like one of the others.
Reads DRIVE (40), STARE (20) and CHASE_DB1 (28) from --data-root; --quick reads 3 photographs of each.
--colour fov_standardized measures the photographs as data.colour=fov_standardized gives them to training and
prediction (retina_seg/data/colour.py): each mapped to one colour standard inside its FOV at its own size first.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, save_results
from retina_seg.data.colour import COLOUR_MODES, ColourStandard, colour_standard
from retina_seg.data.errors import DataError
from retina_seg.data.geometry import to_fov_geometry
from retina_seg.data.layouts import chase_db1_samples, drive_samples, stare_samples
from retina_seg.data.loading import LoadedSample, load_samples

DIAMETER = 512
SETS = {"DRIVE": drive_samples, "STARE": stare_samples, "CHASE_DB1": chase_db1_samples}
MEASURES = ("red", "green", "blue", "green_contrast", "sharpness", "noise", "vessel_fraction")


def photograph_measures(image: np.ndarray, fov: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The measures of one photograph, taken as given (at_common_geometry puts it at the one geometry first)."""
    inner = cv2.erode(fov.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0  # away from the FOV's rim
    green = image[..., 1].astype(np.float32)
    means = [float(image[..., c][fov].mean()) for c in range(3)]
    laplacian = cv2.Laplacian(green, cv2.CV_32F)
    residual = green - cv2.GaussianBlur(green, (0, 0), 1.0)
    return {
        "red": means[0],
        "green": means[1],
        "blue": means[2],
        "green_contrast": float(green[fov].std() / max(means[1], 1.0)),
        "sharpness": float(laplacian[inner].var()),
        "noise": float(1.4826 * np.median(np.abs(residual[inner]))),
        "vessel_fraction": float(mask[fov].mean()),
    }


def set_measures(
    name: str, root: Path, limit: int | None, colour: ColourStandard | None = None
) -> list[dict[str, float]]:
    samples = [s for split in ("train", "test") for s in SETS[name](root, split)][:limit]
    loaded = load_samples(samples, detect_missing_fov=True)
    if colour is not None:
        loaded = [replace(s, image=colour.apply(s.image, s.fov)) for s in loaded]
    return [photograph_measures(*at_common_geometry(s)) for s in loaded]


def at_common_geometry(sample: LoadedSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, FOV and vessel mask as training with data.fov_diameter=DIAMETER sees the photograph."""
    at_diameter = to_fov_geometry(sample, DIAMETER)
    return at_diameter.image, at_diameter.fov, at_diameter.mask


def summary_rows(measured: dict[str, list[dict[str, float]]]) -> list[tuple]:
    rows = []
    for name, photos in measured.items():
        cells = []
        for measure in MEASURES:
            values = [p[measure] for p in photos]
            digits = 3 if measure in ("green_contrast", "vessel_fraction") else 1
            cells.append(f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})")
        rows.append((name, len(photos), *cells))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--colour", choices=COLOUR_MODES, default=None, help="measure with data.colour=<this>")
    args = parser.parse_args(argv)
    print(f"machine: {machine_line()}", flush=True)
    standard = colour_standard(args.colour)
    limit = 3 if args.quick else None
    try:
        measured = {name: set_measures(name, args.data_root / name, limit, standard) for name in SETS}
    except DataError as error:
        fail(str(error))
    colour = f"data.colour={args.colour}" if args.colour else "as photographed"
    print(f"\nmedian (min-max) per set, inside the FOV, FOV diameter {DIAMETER} px, {colour}:")
    print(markdown_table(("set", "photographs", *MEASURES), summary_rows(measured)))
    save_results(args.json, {"quick": args.quick, "diameter": DIAMETER, "colour": args.colour, "photographs": measured})


if __name__ == "__main__":
    main()
