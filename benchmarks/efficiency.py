"""How close training gets to the machine's limit: convolution GFLOP/s achieved during training steps of our
pipeline, as a fraction of the GFLOP/s of a large matrix product measured in the same run.

Convolution FLOPs per training step are counted exactly by torch.utils.flop_counter.FlopCounterMode over
one forward and backward pass (forward convolutions, and the input- and weight-gradient convolutions of
the backward pass; the first layer needs no input gradient). The achieved rate divides them by the whole
step time (data loading, other layers, optimizer included). The matrix products and the training loops
take turns in one process, window by window, and each round's fraction compares neighbours in time.
"""

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import (
    GPU_NOT_MEASURED,
    WindowClock,
    argument_parser,
    machine_line,
    markdown_table,
    quiet_libraries,
    run_in_turns,
    save_results,
)
from benchmarks.throughput import Case, data_overrides, pipeline_loop
from retina_seg.launch.resources import cpu_bf16_flags
from retina_seg.training.run_config import train_config

NETS = {"unet": "default net", "unet_reference": "reference net"}
# training variant: (trainer.precision, the matmul dtype it is compared with)
PRECISIONS = {"fp32": ("32-true", torch.float32), "bf16": ("bf16-mixed", torch.bfloat16)}
QUICK = (Case("unet", 128, 4, 2, 1, 5),)
FULL = (Case("unet_reference", 256, 2, 2, 1, 6), Case("unet", 256, 4, 2, 2, 10))
MATMUL_SIDE = {True: 2048, False: 4096}  # by --quick
# Without bf16 in hardware a bf16 product is emulated: a 2048x2048 one took 61 s against fp32's 0.16 s on an
# AVX2-only AMD EPYC (2026-12-03), so a bf16 fraction there would measure the emulation for many minutes.
BF16_NOT_MEASURED = "bf16: not measured (this CPU has no bf16 arithmetic in hardware: no AMX, no AVX-512 BF16)"


def measured_precisions() -> dict[str, tuple[str, torch.dtype]]:
    """The variants worth timing on this CPU: bf16 only where it runs in hardware."""
    return PRECISIONS if cpu_bf16_flags() else {"fp32": PRECISIONS["fp32"]}


def conv_flops_per_step(cfg: DictConfig, case: Case) -> int:
    """FLOPs of every convolution in one training step (forward + backward) of the configured net."""
    net = instantiate(cfg.model).train()
    image = torch.randn(case.batch_size, 3, case.size, case.size)
    mask = torch.zeros(case.batch_size, 1, case.size, case.size)
    with FlopCounterMode(display=False) as counter:
        instantiate(cfg.loss)(net(image), mask).backward()
    return sum(flops for op, flops in counter.get_flop_counts()["Global"].items() if "convolution" in str(op))


def matmul_loop(side: int, dtype: torch.dtype):
    """One step is one side x side matrix product; it takes 2 * side**3 FLOPs."""
    left, right = torch.randn(side, side).to(dtype), torch.randn(side, side).to(dtype)

    def run(clock: WindowClock) -> None:
        while True:
            torch.mm(left, right)
            if clock.step_done():
                return

    return run


def measure_case(case: Case, side: int, scratch: Path, precisions: dict) -> dict:
    """The training variants of one case and the matrix products, taking turns; fractions per round."""
    configs = {
        name: train_config(
            [*data_overrides(case), "module.channels_last=true", f"trainer.precision={precision}"],
            scratch / case.model / name,
        )
        for name, (precision, _) in precisions.items()
    }
    loops = {f"train_{name}": pipeline_loop(cfg) for name, cfg in configs.items()}
    loops.update({f"matmul_{name}": matmul_loop(side, dtype) for name, (_, dtype) in precisions.items()})
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the progress bar still renders
        seconds = run_in_turns(loops, case.warmup, case.steps, case.rounds)
    flops = conv_flops_per_step(configs["fp32"], case)
    variants = {}
    for name in precisions:
        achieved = [flops / s / 1e9 for s in seconds[f"train_{name}"]]
        limit = [2 * side**3 / s / 1e9 for s in seconds[f"matmul_{name}"]]
        variants[name] = {
            "achieved_gflops": achieved,
            "matmul_gflops": limit,
            "fraction": statistics.median(a / m for a, m in zip(achieved, limit)),
        }
    return {
        "model": case.model,
        "input": f"{case.batch_size}x3x{case.size}x{case.size}",
        "conv_gflop_per_step": flops / 1e9,
        "matmul_side": side,
        "rounds": case.rounds,
        "steps_per_round": case.steps,
        "variants": variants,
    }


def summary_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        for name, v in r["variants"].items():
            rows.append(
                (
                    r["model"],
                    r["input"],
                    f"{name}, channels_last",
                    f"{r['conv_gflop_per_step']:.2f}",
                    f"{statistics.median(v['achieved_gflops']):.1f}",
                    f"{statistics.median(v['matmul_gflops']):.1f}",
                    f"{v['fraction']:.3f}",
                    GPU_NOT_MEASURED,
                )
            )
    headers = (
        "model",
        "batch",
        "training",
        "conv GFLOP/step",
        "achieved conv GFLOP/s",
        "matmul GFLOP/s (same dtype)",
        "fraction",
        "GPU",
    )
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    args = argument_parser(__doc__.splitlines()[0]).parse_args(argv)
    quiet_libraries()
    side = MATMUL_SIDE[args.quick]
    print(f"machine: {machine_line()}", flush=True)
    precisions = measured_precisions()
    if "bf16" not in precisions:
        print(BF16_NOT_MEASURED, flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retina-seg-efficiency-") as scratch:
        cases = QUICK if args.quick else FULL
        results = [measure_case(case, side, Path(scratch), precisions) for case in cases]
    print(
        f"\n{summary_table(results)}\n\n(matrix product {side}x{side} @ {side}x{side}; GFLOP/s: median over "
        f"rounds; fraction: median of per-round fractions; {time.perf_counter() - started:.0f} s in all)"
    )
    save_results(args.json, {"quick": args.quick, "cases": results})
    for r in results:  # the default net comes last
        print(
            f"conv efficiency (achieved conv GFLOP/s / fp32 matmul GFLOP/s, {NETS[r['model']]}, "
            f"fp32 channels_last): {r['variants']['fp32']['fraction']:.3f}"
        )


if __name__ == "__main__":
    main()
