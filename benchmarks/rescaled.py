"""Scale-aware prediction on photographs from another camera's resolution: DRIVE's test photographs 01-05 stored at
0.75x, 2x and 3x their size (as another camera would give them), predicted by `retina-seg-predict` with scale
awareness (the default) and at the photographs' own scale (`mode=tiles`), scored against their manual masks resized
alike, beside the native photographs.

    python -m benchmarks.rescaled --checkpoint RUN/checkpoints/best.ckpt [--drive-root DIR] [--json PATH]

The checkpoint should be trained on DRIVE at its native scale (for example `retina-seg-train data=drive`). Printed per
factor: IoU native, scale-aware and at the photographs' scale, and the two gaps to native. How close the scale-aware
score comes to native depends on the model and the machine's arithmetic (bf16 or fp32), so it is measured here;
tests/integration/test_scale.py asserts the behaviour (the photographs are rescaled, and rescaling beats not
rescaling). The last line printed is the largest gap between scale-aware and native IoU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, save_results

PHOTOGRAPHS = [f"{number:02d}" for number in range(1, 6)]  # DRIVE test 01-05
FACTORS = (0.75, 2.0, 3.0)


def _resized(image: Image.Image, factor: float, resample: int) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), resample)


def _binary(mask: np.ndarray, factor: float) -> Image.Image:
    """A manual mask resized as its photograph: bilinear on 0/255, then above half."""
    grey = _resized(Image.fromarray(mask.astype(np.uint8) * 255), factor, Image.BILINEAR)
    return Image.fromarray((np.asarray(grey) > 127).astype(np.uint8) * 255)


def write_resized_drive(
    drive_root: Path, folder: Path, factor: float, layout: str = "flat", photographs: int = len(PHOTOGRAPHS)
) -> Path:
    """The first `photographs` of DRIVE test photographs 01-05 and their manual masks scaled by `factor` (bicubic
    photographs). "flat": images/NN_test.png and masks/NN_manual1.png; "hrf": the HRF layout (JPEG photographs,
    TIFF masks and FOV)."""
    from retina_seg.data.io import read_mask

    test = drive_root / "test"
    for number in PHOTOGRAPHS[:photographs]:
        photo = _resized(Image.open(test / "images" / f"{number}_test.tif").convert("RGB"), factor, Image.BICUBIC)
        truth = _binary(read_mask(test / "1st_manual" / f"{number}_manual1.gif"), factor)
        if layout == "flat":
            paths = {
                "image": folder / "images" / f"{number}_test.png",
                "truth": folder / "masks" / f"{number}_manual1.png",
            }
        else:
            paths = {
                "image": folder / "images" / f"{number}_h.jpg",
                "truth": folder / "manual1" / f"{number}_h.tif",
                "fov": folder / "mask" / f"{number}_h_mask.tif",
            }
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        photo.save(paths["image"], quality=95)  # JPEG quality; PNG ignores it
        truth.save(paths["truth"])
        if "fov" in paths:
            _binary(read_mask(test / "mask" / f"{number}_test_mask.gif"), factor).save(paths["fov"])
    return folder


def predicted(checkpoint: Path, folder: Path, out: Path, *overrides: str) -> dict:
    """retina-seg-predict's summary over the folder's photographs, scored against its masks."""
    from retina_seg.inference.run import predict_files
    from retina_seg.inference.settings import predict_settings
    from retina_seg.launch.composition import compose_config, run_config

    settings = [
        f"ckpt_path={checkpoint}",
        f"input={folder / 'images'}",
        f"masks={folder / 'masks'}",
        f"output={out}",
        "progress_bar=false",
        "num_workers=0",
        *overrides,
    ]
    return predict_files(predict_settings(run_config(compose_config("predict", settings, "predict"))))


def measure(checkpoint: Path, drive_root: Path, scratch: Path) -> dict:
    """IoU of the native photographs, then per factor scale-aware and at the photographs' own scale."""
    native_folder = write_resized_drive(drive_root, scratch / "native", 1.0)
    native = predicted(checkpoint, native_folder, native_folder / "out")["overall"]["IoU"]
    rows = []
    for factor in FACTORS:
        folder = write_resized_drive(drive_root, scratch / f"x{factor}", factor)
        aware = predicted(checkpoint, folder, folder / "aware")["overall"]["IoU"]
        unaware = predicted(checkpoint, folder, folder / "unaware", "mode=tiles")["overall"]["IoU"]
        rows.append({"factor": factor, "native": native, "aware": aware, "unaware": unaware})
    return {"native_IoU": native, "factors": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a DRIVE-native run's best.ckpt")
    parser.add_argument("--drive-root", type=Path, default=Path("../shared/data/DRIVE"))
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        fail(f"--checkpoint {args.checkpoint}: no such file")
    if not (args.drive_root / "test" / "images").is_dir():
        fail(f"--drive-root {args.drive_root}: no test/images folder there")
    print(f"machine: {machine_line()}")
    print(f"checkpoint: {args.checkpoint}; DRIVE test {PHOTOGRAPHS[0]}-{PHOTOGRAPHS[-1]}")
    with tempfile.TemporaryDirectory(prefix="retina-seg-rescaled-") as scratch:
        results = measure(args.checkpoint, args.drive_root, Path(scratch))
    table = [
        [f"{r['factor']}x", f"{r['native']:.4f}", f"{r['aware']:.4f}", f"{r['unaware']:.4f}"]
        + [f"{r['aware'] - r['native']:+.4f}", f"{r['unaware'] - r['native']:+.4f}"]
        for r in results["factors"]
    ]
    headers = ["factor", "IoU native", "scale-aware", "photographs' scale", "aware - native", "own scale - native"]
    print(markdown_table(headers, table))
    save_results(args.json, {"quick": args.quick, "checkpoint": str(args.checkpoint), **results})
    largest = max(abs(r["aware"] - r["native"]) for r in results["factors"])
    print(f"largest |scale-aware - native| IoU over {', '.join(f'{f}x' for f in FACTORS)}: {largest:.4f}")


if __name__ == "__main__":
    main()
