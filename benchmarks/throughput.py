"""Training throughput of our Lightning pipeline against a plain PyTorch loop, side by side in one process.

Every variant gets the same composed config, its own copy of the same data loader, the same seeded model
and the same optimizer. The variants run in threads that take turns, one window of steps each, so only one
of them computes at a time and load from other processes falls on all alike (benchmarks.common). Start-up
and warm-up steps are not timed; everything a step costs (data loading, augmentation, logging, progress
bar, hooks) is. Ratios are medians of the per-round ratios.
"""

import contextlib
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from benchmarks.common import (
    GPU_NOT_MEASURED,
    WindowClock,
    argument_parser,
    machine_line,
    markdown_table,
    median_ratio,
    quiet_libraries,
    run_in_turns,
    save_results,
)
from retina_seg.models.unet import count_parameters
from retina_seg.training.pipeline import build_module, build_trainer
from retina_seg.training.run_config import train_config

NETS = {"unet": "default net", "unet_reference": "reference net"}
# What each variant changes in the composed config; everything else is the config's own run-time settings.
# The plain loop and the first pipeline variant share one setting (the overhead ratio); the speed settings
# are our config's channels_last, with and without bf16 autocast (the speed-up ratios).
VARIANTS = {
    "plain_fp32": ("module.channels_last=false", "trainer.precision=32-true"),
    "pipeline_fp32": ("module.channels_last=false", "trainer.precision=32-true"),
    "pipeline_channels_last": ("module.channels_last=true", "trainer.precision=32-true"),
    "pipeline_channels_last_bf16": ("module.channels_last=true", "trainer.precision=bf16-mixed"),
}
SPEED_VARIANTS = {"pipeline_channels_last": "channels_last", "pipeline_channels_last_bf16": "channels_last+bf16"}
# A second, identical plain loop (full mode): its ratio to the first shows how far noise alone moves a ratio.
CONTROL = "plain_fp32_again"
OVERHEAD_MIN = 0.95


@dataclass(frozen=True)
class Case:
    """One network at one input size: `warmup` untimed steps, then `rounds` windows of `steps` steps;
    `control` adds the second plain loop."""

    model: str
    size: int
    batch_size: int
    warmup: int
    steps: int
    rounds: int
    control: bool = False


# The default net comes last in both lists: its overhead ratio is the final line printed.
# Short windows and many rounds: each ratio compares steps taken moments apart, under the same load.
QUICK = (Case("unet_reference", 32, 2, 1, 1, 2), Case("unet", 64, 4, 1, 1, 4))
FULL = (Case("unet_reference", 256, 2, 2, 1, 7, control=True), Case("unet", 256, 4, 3, 2, 15, control=True))


def data_overrides(case: Case) -> list[str]:
    """The network, the synthetic data at the case's size, and enough training batches for every window."""
    photos = 2 * case.batch_size
    batches = case.warmup + case.rounds * case.steps + 1
    return [
        f"model={case.model}",
        "data=synthetic",
        f"data.source.height={case.size}",
        f"data.source.width={case.size}",
        f"data.source.n_train={photos}",
        "data.source.n_val=1",
        "data.source.n_test=1",
        f"data.batch_size={case.batch_size}",
        f"data.train_repeats={math.ceil(batches * case.batch_size / photos)}",
        "trainer.max_epochs=1",
        "trainer.enable_model_summary=false",
    ]


def case_overrides(case: Case, fast_workers: int) -> dict[str, list[str]]:
    """Each variant's config overrides; the speed variants may also load data in worker processes."""
    data = data_overrides(case)
    variants = {**VARIANTS, CONTROL: VARIANTS["plain_fp32"]} if case.control else VARIANTS
    return {
        name: [*data, *settings, *([f"data.num_workers={fast_workers}"] if name in SPEED_VARIANTS else [])]
        for name, settings in variants.items()
    }


class WindowsDone(Exception):
    """Ends a fit right after the last timed window: the epoch-end validation and checkpoint writing that
    a normal stop triggers fall outside every window anyway, and take seconds for the 31M-parameter net."""


class ClockCallback(pl.Callback):
    """Reports every finished training batch to the clock; ends the fit after the last window."""

    def __init__(self, clock: WindowClock):
        self.clock = clock

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.clock.step_done():
            raise WindowsDone


def seeded_setup(cfg: DictConfig):
    """The same seeded data and module for both loops, so they differ only in what drives the steps."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("fit")
    return datamodule, build_module(cfg, datamodule.in_channels)


def pipeline_loop(cfg: DictConfig):
    """A real fit: our datamodule, our module and our trainer with our callbacks and logger."""
    datamodule, module = seeded_setup(cfg)
    trainer = build_trainer(cfg)

    def run(clock: WindowClock) -> None:
        trainer.callbacks.append(ClockCallback(clock))
        with contextlib.suppress(WindowsDone):
            trainer.fit(module, datamodule=datamodule)

    return run


def plain_loop(cfg: DictConfig):
    """The textbook loop over the same loader, seeded net, loss and optimizer."""
    datamodule, module = seeded_setup(cfg)
    net, loss_fn = module.net.train(), module.loss
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())

    def run(clock: WindowClock) -> None:
        for batch in datamodule.train_dataloader():
            optimizer.zero_grad()
            loss = loss_fn(net(batch["image"]), batch["mask"], batch["fov"])
            loss.backward()
            optimizer.step()
            if clock.step_done():
                return

    return run


def measure_case(case: Case, fast_workers: int, scratch: Path) -> dict:
    """All variants of one case, taking turns; images/s per round and the median ratios."""
    configs = {
        name: train_config(overrides, scratch / case.model / name)
        for name, overrides in case_overrides(case, fast_workers).items()
    }
    loops = {name: (plain_loop if name.startswith("plain") else pipeline_loop)(cfg) for name, cfg in configs.items()}
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the progress bar still renders
        seconds = run_in_turns(loops, case.warmup, case.steps, case.rounds)
    rates = {name: [case.batch_size / s for s in values] for name, values in seconds.items()}
    net = instantiate(configs["plain_fp32"].model)
    return {
        "model": case.model,
        "parameters": count_parameters(net),
        "input": f"{case.batch_size}x3x{case.size}x{case.size}",
        "warmup_steps": case.warmup,
        "steps_per_round": case.steps,
        "rounds": case.rounds,
        "images_per_s": rates,
        "overhead_ratio": median_ratio(rates["pipeline_fp32"], rates["plain_fp32"]),
        "control_ratio": median_ratio(rates[CONTROL], rates["plain_fp32"]) if case.control else None,
        "speedup_ratios": {
            label: median_ratio(rates[name], rates["plain_fp32"]) for name, label in SPEED_VARIANTS.items()
        },
    }


def rounds_table(result: dict) -> str:
    rates = result["images_per_s"]
    rows = [(index + 1, *(f"{rates[name][index]:.2f}" for name in rates)) for index in range(result["rounds"])]
    return markdown_table(("round", *(f"{name} img/s" for name in rates)), rows)


def summary_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        rates = (f"{statistics.median(r['images_per_s'][name]):.2f}" for name in VARIANTS)
        speedups = (f"{r['speedup_ratios'][label]:.2f}" for label in SPEED_VARIANTS.values())
        control = "-" if r["control_ratio"] is None else f"{r['control_ratio']:.3f}"
        rows.append(
            (
                r["model"],
                f"{r['parameters'] / 1e6:.1f}M",
                r["input"],
                *rates,
                f"{r['overhead_ratio']:.3f}",
                control,
                *speedups,
                GPU_NOT_MEASURED,
            )
        )
    headers = (
        "model",
        "params",
        "batch",
        *(f"{name} img/s" for name in VARIANTS),
        "overhead ratio",
        "plain/plain control ratio",
        *(f"speed-up {label}" for label in SPEED_VARIANTS.values()),
        "GPU",
    )
    return markdown_table(headers, rows)


def claims(results: list[dict]) -> str:
    """The issue's two promises, checked on this run's numbers (reported, not enforced: timing is noisy)."""
    parts = []
    for r in results:
        overhead = "met" if r["overhead_ratio"] >= OVERHEAD_MIN else "NOT met"
        faster = [label for label, ratio in r["speedup_ratios"].items() if ratio > 1]
        parts.append(
            f"{NETS[r['model']]}: overhead ratio >= {OVERHEAD_MIN} {overhead}, faster than plain with "
            f"{' and '.join(faster) if faster else 'NO speed setting'}"
        )
    return "claims: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--fast-workers",
        type=int,
        default=0,
        metavar="N",
        help="data.num_workers of the speed-settings variants (default 0, as in our configs)",
    )
    args = parser.parse_args(argv)
    if args.fast_workers < 0:
        parser.error(f"--fast-workers must be >= 0, got {args.fast_workers}")
    quiet_libraries()
    print(f"machine: {machine_line()}", flush=True)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="retina-seg-throughput-") as scratch:
        for case in QUICK if args.quick else FULL:
            results.append(measure_case(case, args.fast_workers, Path(scratch)))
            print(
                f"\n{case.model}, batch {results[-1]['input']}, {case.warmup} warm-up steps, then rounds of "
                f"{case.steps} steps:\n{rounds_table(results[-1])}",
                flush=True,
            )
    print(
        f"\n{summary_table(results)}\n\n(images/s: median over rounds; ratios: median of per-round ratios; "
        f"{time.perf_counter() - started:.0f} s in all)"
    )
    save_results(args.json, {"quick": args.quick, "fast_workers": args.fast_workers, "cases": results})
    print(claims(results))
    for r in results:
        for label, ratio in r["speedup_ratios"].items():
            print(f"speed-up ratio (pipeline {label} / plain fp32, {NETS[r['model']]}): {ratio:.2f}")
    for r in results:
        print(f"overhead ratio (pipeline/plain, {NETS[r['model']]}): {r['overhead_ratio']:.2f}")


if __name__ == "__main__":
    main()
