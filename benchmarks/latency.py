"""Inference latency per image for each network (fp32, channels_last, channels_last + bf16), and images/s of
a real `retina-seg-predict` over a folder of PNG photographs.

The latency variants take turns in one process (see benchmarks.common.run_in_turns), one window of calls
each, so load from other processes falls on all of them alike; the first calls (oneDNN primitive creation)
are not timed. The folder is predicted by the real command (`python -m retina_seg.predict`, its default
settings: FOV detection, loader workers, mask, probability and overlay files written) with a checkpoint
from a tiny real training run; runs with and without channels_last alternate. Images/s is the predictor's
own figure (predictions.json: loading to last file written); the command's wall time adds start-up.
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
from retina_seg.data.synthetic import synthesize_fundus
from retina_seg.inference.writers import SUMMARY_JSON
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


@dataclass(frozen=True)
class Plan:
    """Image side, untimed warm-up calls, calls per round, rounds; the folder's images, the predict runs
    per setting and the networks predicted with."""

    size: int
    warmup: int
    steps: int
    rounds: int
    folder_images: int
    predict_rounds: int
    predict_models: tuple[str, ...]


QUICK = Plan(size=64, warmup=2, steps=1, rounds=3, folder_images=4, predict_rounds=1, predict_models=("unet",))
FULL = Plan(
    size=512, warmup=2, steps=1, rounds=7, folder_images=8, predict_rounds=3, predict_models=("unet", "unet_reference")
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
    """A real checkpoint of the network from a tiny `retina-seg-train` run (speed does not depend on weights)."""
    run_dir = scratch / f"train-{model}"
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
    args = argument_parser(__doc__.splitlines()[0]).parse_args(argv)
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
        f"besides channels_last):\n{predict_table(predictions, plan.size)}"
    )
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    save_results(args.json, {"quick": args.quick, "latency": latency, "predict": predictions})
    for r in latency:
        print(
            f"inference speed-up (fp32 / channels_last+bf16, {NETS[r['model']]}, {r['input']}): {r['speedup_bf16']:.2f}"
        )


if __name__ == "__main__":
    main()
