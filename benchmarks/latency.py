"""Inference latency per image for each network (fp32, channels_last, channels_last + bf16), images/s of
a real `retina-seg-predict` over a folder of PNG photographs, and where the time goes on large photographs.

The latency variants take turns in one process (see benchmarks.common.run_in_turns), one window of calls
each, so load from other processes falls on all of them alike; the first calls (oneDNN primitive creation)
are not timed. The folder is predicted by the real command (`python -m retina_seg.predict`, its default
settings: FOV detection, loader workers, mask, probability and overlay files written) with a checkpoint
from a tiny real training run; runs with and without channels_last alternate. Images/s is the predictor's
own figure (predictions.json: loading to last file written); the command's wall time adds start-up.

Large photographs: real DRIVE and CHASE_DB1 photographs enlarged (bicubic) to the geometry of HRF's 3504x2336
JPEGs (FOV about 3262 px wide, cropped at the top and bottom), timed stage by stage with the functions
`retina-seg-predict` runs (decode, FOV detection, resizing down to a training FOV diameter of 488 px, network,
probabilities back to full size with the mask, the three PNGs), then predicted by the real command.
"""

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import (
    GPU_NOT_MEASURED,
    WindowClock,
    argument_parser,
    fail,
    machine_line,
    markdown_table,
    median_ratio,
    quiet_libraries,
    run_command,
    run_in_turns,
    save_results,
)
from retina_seg.data.fov import detect_fov, fov_diameter
from retina_seg.data.io import read_image
from retina_seg.data.scale import ScaleRule, rescale
from retina_seg.data.synthetic import synthesize_fundus
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.inference.run import full_size_mask
from retina_seg.inference.writers import SUMMARY_JSON, write_prediction
from retina_seg.training.pipeline import build_module
from retina_seg.training.run_config import train_config

NETS = {"unet": "default net", "unet_reference": "reference net"}
# variant: (module.channels_last, bf16 autocast)
VARIANTS = {"fp32": (False, False), "channels_last": (True, False), "channels_last+bf16": (True, True)}
# retina-seg-predict has channels_last (its default) but no bf16 setting.
PREDICT_VARIANTS = {"channels_last": "channels_last=true", "fp32 default layout": "channels_last=false"}
# The smallest real training run that leaves a best.ckpt with its threshold.
TINY_TRAINING = [
    "data.source.n_train=2",
    "data.source.n_val=1",
    "data.source.n_test=1",
    "data.source.height=64",
    "data.source.width=64",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "callbacks=minimal",
    "logger=none",
    "test=false",
    "trainer.enable_model_summary=false",
]


# HRF: 3504x2336 JPEGs whose FOV, about 3262 px wide, is cut at the top and bottom; trained at 488 px (issue 31).
HRF_SIZE, HRF_FOV_WIDTH, LARGE_TRAIN_FOV_DIAMETER = (3504, 2336), 3262, 488
LARGE_SOURCES = {"DRIVE": "DRIVE/test/images/01_test.tif", "CHASE_DB1": "CHASE_DB1/Image_01L.jpg"}
OVERLAY_COLOR, OVERLAY_ALPHA = (0, 255, 0), 0.6  # conf/predict.yaml's defaults
STAGES = ("decode", "FOV detection", "resize down", "network", "resize up + mask", "write 3 PNGs")


@dataclass(frozen=True)
class Plan:
    """Image side, untimed warm-up calls, calls per round, rounds; the folder's images, the predict runs
    per setting and the networks predicted with; the large photographs' scale of HRF's size and timed rounds."""

    size: int
    warmup: int
    steps: int
    rounds: int
    folder_images: int
    predict_rounds: int
    predict_models: tuple[str, ...]
    large_scale: float
    large_rounds: int


QUICK = Plan(
    size=64,
    warmup=2,
    steps=1,
    rounds=3,
    folder_images=4,
    predict_rounds=1,
    predict_models=("unet",),
    large_scale=0.25,
    large_rounds=1,
)
FULL = Plan(
    size=512,
    warmup=2,
    steps=1,
    rounds=7,
    folder_images=8,
    predict_rounds=3,
    predict_models=("unet", "unet_reference"),
    large_scale=1.0,
    large_rounds=3,
)


def inference_module(model: str, channels_last: bool, scratch: Path):
    """The module exactly as training builds it (its forward gives vessel probabilities), in eval mode."""
    cfg = train_config([f"model={model}", f"module.channels_last={str(channels_last).lower()}"], scratch / model)
    torch.manual_seed(cfg.seed)
    return build_module(cfg, in_channels=3).eval()


def latency_loop(module, image: torch.Tensor, bf16: bool):
    def run(clock: WindowClock) -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            while True:
                module(image)
                if clock.step_done():
                    return

    return run


def measure_latency(model: str, plan: Plan, scratch: Path) -> dict:
    """Seconds per 1xCxSxS image for each variant, taking turns; median over rounds."""
    image = torch.randn(1, 3, plan.size, plan.size)
    loops = {}
    for name, (channels_last, bf16) in VARIANTS.items():
        loops[name] = latency_loop(inference_module(model, channels_last, scratch), image, bf16)
    seconds = run_in_turns(loops, plan.warmup, plan.steps, plan.rounds)
    return {
        "model": model,
        "input": f"1x3x{plan.size}x{plan.size}",
        "seconds": seconds,
        "median_ms": {name: 1000 * statistics.median(values) for name, values in seconds.items()},
        "speedup_bf16": median_ratio(seconds["fp32"], seconds["channels_last+bf16"]),
        "speedup_channels_last": median_ratio(seconds["fp32"], seconds["channels_last"]),
    }


def write_photographs(folder: Path, count: int, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, _, _ = synthesize_fundus(index, size, size)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    return folder


def trained_checkpoint(model: str, scratch: Path) -> Path:
    """A real checkpoint of the network from a tiny `retina-seg-train` run (speed does not depend on weights),
    trained once per scratch folder."""
    run_dir = scratch / f"train-{model}"
    if (run_dir / "checkpoints" / "best.ckpt").is_file():
        return run_dir / "checkpoints" / "best.ckpt"
    run_command("retina_seg.train", [f"model={model}", *TINY_TRAINING, f"hydra.run.dir={run_dir}"])
    return run_dir / "checkpoints" / "best.ckpt"


def measure_predict(model: str, plan: Plan, folder: Path, scratch: Path) -> dict:
    """Images/s of `retina-seg-predict` over the folder, with and without channels_last, runs alternating."""
    checkpoint = trained_checkpoint(model, scratch)
    runs = {name: {"images_per_s": [], "command_s": []} for name in PREDICT_VARIANTS}
    for index in range(plan.predict_rounds):
        for slot, (name, setting) in enumerate(PREDICT_VARIANTS.items()):
            output = scratch / f"predict-{model}-{index}-{slot}"
            seconds = run_command(
                "retina_seg.predict",
                [
                    f"ckpt_path={checkpoint}",
                    f"input={folder}",
                    f"output={output}",
                    f"hydra.run.dir={output}",
                    "progress_bar=false",
                    setting,
                ],
            )
            summary = json.loads((output / SUMMARY_JSON).read_text())
            if summary["predicted"] != plan.folder_images:
                fail(f"{output / SUMMARY_JSON}: predicted {summary['predicted']} of {plan.folder_images} images")
            runs[name]["images_per_s"].append(summary["images_per_s"])
            runs[name]["command_s"].append(seconds)
    return {
        "model": model,
        "images": plan.folder_images,
        "runs": runs,
        "images_per_s": {name: statistics.median(r["images_per_s"]) for name, r in runs.items()},
        "command_s": {name: statistics.median(r["command_s"]) for name, r in runs.items()},
    }


def hrf_like(photograph: Path, scale: float) -> Image.Image:
    """A real photograph enlarged (bicubic) until its width is HRF's FOV width, on a black canvas of HRF's size
    (times `scale`), cut at the top and bottom as HRF's camera cuts its circle."""
    width, height = (round(side * scale) for side in HRF_SIZE)
    source = Image.open(photograph).convert("RGB")
    factor = HRF_FOV_WIDTH * scale / source.width
    enlarged = source.resize((round(source.width * factor), round(source.height * factor)), Image.BICUBIC)
    top = max(0, (enlarged.height - height) // 2)
    enlarged = enlarged.crop((0, top, enlarged.width, top + min(height, enlarged.height)))
    canvas = Image.new("RGB", (width, height))
    canvas.paste(enlarged, ((width - enlarged.width) // 2, (height - enlarged.height) // 2))
    return canvas


def write_large_photographs(data_root: Path, folder: Path, scale: float) -> list[Path] | None:
    """HRF-like JPEGs made from LARGE_SOURCES; None when the data root lacks them."""
    sources = {name: data_root / path for name, path in LARGE_SOURCES.items()}
    if not all(path.is_file() for path in sources.values()):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, source in sources.items():
        paths.append(folder / f"{name}.jpg")
        hrf_like(source, scale).save(paths[-1], quality=95)
    return paths


def timed(seconds: dict[str, list[float]], stage: str, work):
    """work()'s result; its seconds appended to seconds[stage]."""
    started = time.perf_counter()
    result = work()
    seconds[stage].append(time.perf_counter() - started)
    return result


def predict_in_stages(predictor: VesselPredictor, photograph: Path, output: Path, seconds: dict) -> tuple:
    """One photograph through prediction's own functions, each stage's seconds appended; (size, network size)."""
    rule = ScaleRule(LARGE_TRAIN_FOV_DIAMETER)
    image = timed(seconds, "decode", lambda: read_image(photograph))
    fov = timed(seconds, "FOV detection", lambda: detect_fov(image))
    small = timed(seconds, "resize down", lambda: rescale(image, rule.factor(fov_diameter(fov))))
    probability = timed(seconds, "network", lambda: predictor.predict(small, "whole"))
    probability, mask = timed(
        seconds, "resize up + mask", lambda: full_size_mask(probability, fov, predictor.threshold)
    )
    timed(
        seconds,
        "write 3 PNGs",
        lambda: write_prediction(output, photograph.stem, image, probability, mask, OVERLAY_COLOR, OVERLAY_ALPHA),
    )
    return image.shape[:2], small.shape[:2]


def measure_large(checkpoint: Path, plan: Plan, photographs: list[Path], scratch: Path) -> dict:
    """Median seconds per stage per photograph over the rounds, then images/s of the real command."""
    predictor = VesselPredictor.from_checkpoint(checkpoint)
    seconds = {stage: [] for stage in STAGES}
    sizes = {}
    for index in range(plan.large_rounds):
        for photograph in photographs:
            sizes[photograph.stem] = predict_in_stages(predictor, photograph, scratch / f"stages-{index}", seconds)
    median = {stage: statistics.median(values) for stage, values in seconds.items()}
    output = scratch / "predict-large"
    command_s = run_command(
        "retina_seg.predict",
        [
            f"ckpt_path={checkpoint}",
            f"input={photographs[0].parent}",
            f"output={output}",
            f"hydra.run.dir={output}",
            f"scale.train_fov_diameter={LARGE_TRAIN_FOV_DIAMETER}",
            "progress_bar=false",
        ],
    )
    summary = json.loads((output / SUMMARY_JSON).read_text())
    return {
        "photographs": {name: {"size": list(size), "network_size": list(net)} for name, (size, net) in sizes.items()},
        "seconds": seconds,
        "median_s": median,
        "stages_s": sum(median.values()),
        "predict_images_per_s": summary["images_per_s"],
        "predict_s_per_image": 1 / summary["images_per_s"],
        "command_s": command_s,
    }


def large_table(large: dict) -> str:
    rows = [(stage, f"{1000 * large['median_s'][stage]:.0f}") for stage in STAGES]
    rows.append(("all stages, one after another", f"{1000 * large['stages_s']:.0f}"))
    rows.append(("retina-seg-predict over the folder, per photograph", f"{1000 * large['predict_s_per_image']:.0f}"))
    return markdown_table(("stage", "median ms per photograph"), rows)


def latency_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        ms = r["median_ms"]
        rows.append(
            (
                r["model"],
                r["input"],
                *(f"{ms[name]:.0f}" for name in VARIANTS),
                f"{r['speedup_channels_last']:.2f}",
                f"{r['speedup_bf16']:.2f}",
                GPU_NOT_MEASURED,
            )
        )
    headers = (
        "model",
        "input",
        *(f"{name} ms" for name in VARIANTS),
        "speed-up channels_last",
        "speed-up channels_last+bf16",
        "GPU",
    )
    return markdown_table(headers, rows)


def predict_table(results: list[dict], size: int) -> str:
    rows = [
        (
            r["model"],
            f"{r['images']} PNGs of {size}x{size}",
            *(f"{r['images_per_s'][name]:.2f} ({r['command_s'][name]:.1f} s)" for name in PREDICT_VARIANTS),
            GPU_NOT_MEASURED,
        )
        for r in results
    ]
    headers = ("model", "folder", *(f"{name}: images/s (command wall time)" for name in PREDICT_VARIANTS), "GPU")
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"), help="holds DRIVE and CHASE_DB1")
    args = parser.parse_args(argv)
    quiet_libraries()
    plan = QUICK if args.quick else FULL
    print(f"machine: {machine_line()}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retina-seg-latency-") as scratch:
        scratch = Path(scratch)
        latency = [measure_latency(model, plan, scratch) for model in ("unet_reference", "unet")]
        print(
            f"\nlatency per image (median over {plan.rounds} rounds of {plan.steps} calls):\n{latency_table(latency)}",
            flush=True,
        )
        folder = write_photographs(scratch / "photographs", plan.folder_images, plan.size)
        predictions = [measure_predict(model, plan, folder, scratch) for model in plan.predict_models]
        print(
            f"\nretina-seg-predict over a folder (median of {plan.predict_rounds} run(s) each; default settings "
            f"besides channels_last):\n{predict_table(predictions, plan.size)}",
            flush=True,
        )
        large = None
        photographs = write_large_photographs(args.data_root, scratch / "large", plan.large_scale)
        if photographs is None:
            print(f"\nlarge photographs: not measured (no {' or '.join(LARGE_SOURCES.values())} in {args.data_root})")
        else:
            large = measure_large(trained_checkpoint("unet", scratch), plan, photographs, scratch)
            width, height = (round(side * plan.large_scale) for side in HRF_SIZE)
            print(
                f"\nlarge photographs ({width}x{height} JPEGs from {', '.join(LARGE_SOURCES)}; network input "
                f"{'x'.join(map(str, large['photographs']['DRIVE']['network_size'][::-1]))}; median of "
                f"{plan.large_rounds} round(s)):\n{large_table(large)}",
                flush=True,
            )
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    save_results(args.json, {"quick": args.quick, "latency": latency, "predict": predictions, "large": large})
    for r in latency:
        print(
            f"inference speed-up (fp32 / channels_last+bf16, {NETS[r['model']]}, {r['input']}): {r['speedup_bf16']:.2f}"
        )


if __name__ == "__main__":
    main()
