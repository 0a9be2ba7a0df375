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

    python -m benchmarks.rescaled --checkpoint CKPT --upsampling [--data-root DIR] [--quick] [--json PATH]

How probabilities computed at the training scale return to a large photograph's size: DRIVE test and STARE
photographs enlarged 2x and 4x (bicubic) and CHASE_DB1's at 1x and 2x are predicted at the checkpoint's FOV
diameter once each, and the probabilities brought back by each way of UPSAMPLINGS, then scored at full size inside
the FOV against the first observer's mask enlarged alike: false positives, false negatives, their ratio and Dice.
The last line is the ratio FP/FN of prediction's way (`retina_seg.inference.run.full_size_mask`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, save_results

PHOTOGRAPHS = [f"{number:02d}" for number in range(1, 6)]  # DRIVE test 01-05
FACTORS = (0.75, 2.0, 3.0)
# Set: (photograph, first observer's mask, FOV mask or None: detected) relative to the data root, by number.
UPSAMPLING_SETS = {
    "DRIVE": lambda n: (
        f"DRIVE/test/images/{n:02d}_test.tif",
        f"DRIVE/test/1st_manual/{n:02d}_manual1.gif",
        f"DRIVE/test/mask/{n:02d}_test_mask.gif",
    ),
    "STARE": lambda n: (f"STARE/images/im{n:04d}.ppm", f"STARE/labels-ah/im{n:04d}.ah.ppm", None),
    "CHASE_DB1": lambda n: (
        f"CHASE_DB1/Image_{(n + 1) // 2:02d}{'LR'[(n + 1) % 2]}.jpg",
        f"CHASE_DB1/Image_{(n + 1) // 2:02d}{'LR'[(n + 1) % 2]}_1stHO.png",
        None,
    ),
}
UPSAMPLING_FACTORS = {"DRIVE": (2.0, 4.0), "STARE": (2.0, 4.0), "CHASE_DB1": (1.0, 2.0)}
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _to_size(values: np.ndarray, height: int, width: int, interpolation: int) -> np.ndarray:
    return cv2.resize(values, (width, height), interpolation=interpolation)


# name: (small probabilities, threshold, height, width) -> full-size mask
UPSAMPLINGS: dict[str, Callable[[np.ndarray, float, int, int], np.ndarray]] = {
    "bilinear probabilities": lambda p, t, h, w: _to_size(p, h, w, cv2.INTER_LINEAR) >= t,
    "bicubic probabilities": lambda p, t, h, w: _to_size(p, h, w, cv2.INTER_CUBIC) >= t,
    "bilinear logits": lambda p, t, h, w: _to_size(_logit(p), h, w, cv2.INTER_LINEAR) >= _logit(np.float32(t)),
    "bicubic logits": lambda p, t, h, w: _to_size(_logit(p), h, w, cv2.INTER_CUBIC) >= _logit(np.float32(t)),
    "threshold, then nearest": lambda p, t, h, w: _to_size((p >= t).view(np.uint8), h, w, cv2.INTER_NEAREST) > 0,
    "threshold, then bilinear": lambda p, t, h, w: _to_size((p >= t).astype(np.float32), h, w, cv2.INTER_LINEAR) >= 0.5,
}


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


def _enlarged(path: Path, factor: float, resample: int) -> np.ndarray:
    image = Image.open(path)
    return np.asarray(image if factor == 1.0 else _resized(image, factor, resample))


def upsampling_case(predictor, data_root: Path, files: tuple, factor: float) -> dict[str, dict]:
    """One photograph enlarged by `factor`, predicted once at the training scale; each upsampling's counts."""
    from retina_seg.data.fov import detect_fov, fov_diameter
    from retina_seg.data.io import binarise
    from retina_seg.data.scale import ScaleRule, rescale
    from retina_seg.inference.run import full_size_mask

    photo_path, truth_path, fov_path = files
    image = np.ascontiguousarray(_enlarged(data_root / photo_path, factor, Image.BICUBIC)[..., :3])
    truth = np.asarray(_binary(binarise(np.asarray(Image.open(data_root / truth_path).convert("L"))), factor)) > 0
    fov = (
        np.asarray(_binary(binarise(np.asarray(Image.open(data_root / fov_path).convert("L"))), factor)) > 0
        if fov_path
        else detect_fov(image)
    )
    small = rescale(image, ScaleRule(predictor.info.fov_diameter).factor(fov_diameter(fov)))
    kind = "whole" if small.shape[0] * small.shape[1] <= 1024 * 1024 else "tiles"
    probability = predictor.predict(small, kind)
    height, width = image.shape[:2]
    masks = {name: way(probability, predictor.threshold, height, width) for name, way in UPSAMPLINGS.items()}
    masks["prediction's"] = full_size_mask(probability.copy(), fov, predictor.threshold)[1]
    counts = {}
    for name, mask in masks.items():
        inside = mask & fov
        tp, fp, fn = int((inside & truth).sum()), int((inside & ~truth).sum()), int((~mask & truth & fov).sum())
        counts[name] = {"TP": tp, "FP": fp, "FN": fn}
    return counts


def measure_upsampling(checkpoint: Path, data_root: Path, quick: bool) -> dict:
    """Pooled counts per set, factor and upsampling (quick: one photograph of DRIVE and CHASE_DB1 at 2x and 1x)."""
    from retina_seg.inference.predictor import VesselPredictor

    predictor = VesselPredictor.from_checkpoint(checkpoint)
    plan = (
        {"DRIVE": ((1,), (2.0,)), "CHASE_DB1": ((1,), (1.0,))}
        if quick
        else {name: (range(1, 6), factors) for name, factors in UPSAMPLING_FACTORS.items()}
    )
    rows = []
    for set_name, (numbers, factors) in plan.items():
        for factor in factors:
            pooled: dict[str, dict] = {}
            for number in numbers:
                case = upsampling_case(predictor, data_root, UPSAMPLING_SETS[set_name](number), factor)
                for name, counts in case.items():
                    total = pooled.setdefault(name, {"TP": 0, "FP": 0, "FN": 0})
                    for key in total:
                        total[key] += counts[key]
            for name, c in pooled.items():
                dice = 2 * c["TP"] / max(2 * c["TP"] + c["FP"] + c["FN"], 1)
                fp_over_fn = c["FP"] / max(c["FN"], 1)
                rows.append(
                    {
                        "set": set_name,
                        "factor": factor,
                        "photographs": len(numbers),
                        "upsampling": name,
                        **c,
                        "Dice": dice,
                        "FP/FN": fp_over_fn,
                    }
                )
    return {"threshold": predictor.threshold, "train_fov_diameter": predictor.info.fov_diameter, "rows": rows}


def upsampling_main(args) -> None:
    print(f"machine: {machine_line()}")
    results = measure_upsampling(args.checkpoint, args.data_root, args.quick)
    print(
        f"checkpoint: {args.checkpoint}; threshold {results['threshold']:.3f}, "
        f"training FOV diameter {results['train_fov_diameter']}"
    )
    table = [
        [
            r["set"],
            f"{r['factor']}x",
            r["photographs"],
            r["upsampling"],
            r["FP"],
            r["FN"],
            f"{r['FP/FN']:.2f}",
            f"{r['Dice']:.4f}",
        ]
        for r in results["rows"]
    ]
    print(markdown_table(["set", "enlarged", "photographs", "back to full size", "FP", "FN", "FP/FN", "Dice"], table))
    save_results(args.json, {"quick": args.quick, "checkpoint": str(args.checkpoint), **results})
    ours = [r for r in results["rows"] if r["upsampling"] == "prediction's"]
    print(
        "FP/FN of prediction's upsampling, per set and factor: "
        + ", ".join(f"{r['set']} {r['factor']}x {r['FP/FN']:.2f}" for r in ours)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a DRIVE-native run's best.ckpt")
    parser.add_argument("--drive-root", type=Path, default=Path("../shared/data/DRIVE"))
    parser.add_argument("--upsampling", action="store_true", help="compare the ways back to full size instead")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"), help="DRIVE, STARE, CHASE_DB1")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        fail(f"--checkpoint {args.checkpoint}: no such file")
    if args.upsampling:
        upsampling_main(args)
        return
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
