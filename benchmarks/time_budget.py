"""How closely budgeted training (callbacks=time_budget) keeps to its budget on this machine, at 1 and 2 threads.

    python -m benchmarks.time_budget [--quick] [--json PATH]

Each run is the real command (`python -m retina_seg.train`) on a tiny synthetic set with a budget of B seconds
(quick: 10 s, full: 60 s). Printed per thread count: the training time the run recorded (metrics.json's
wall_time_s) and the whole command's wall time, each divided by the budget; the epochs the budget allowed; and
the last learning rate as a fraction of the peak (the schedule's end is peak / 2.5e5). The tests assert the
behaviour (the whole schedule runs, tests/integration/test_time_budget.py); how far the wall time strays from the
budget depends on the machine and its load, so it is measured here instead.
The last line printed is the training time / budget ratio at each thread count.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    TINY_SYNTHETIC_RUN,
    argument_parser,
    machine_line,
    markdown_table,
    run_command,
    save_results,
)
from retina_seg.records.run_folder import read_epoch_table, read_metrics

PEAK_LR = 3e-3
BUDGETED_RUN = [
    *TINY_SYNTHETIC_RUN,
    "loss=bce_dice",
    "trainer.enable_model_summary=false",
    "callbacks=time_budget",
    "callbacks.progress_bar=null",
    "scheduler=none",
    "trainer.max_epochs=100000",
    "logger=none",
    f"optimizer.lr={PEAK_LR}",
]


def budgeted_run(budget_s: int, threads: int, run_dir: Path) -> dict:
    """One budgeted run at ``threads`` torch threads: its recorded training time, wall time, epochs, last lr."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the child's torch threads
    started = time.perf_counter()
    run_command(
        "retina_seg.train", [*BUDGETED_RUN, f"callbacks.time_budget.budget_s={budget_s}", f"hydra.run.dir={run_dir}"]
    )
    command_s = time.perf_counter() - started
    metrics, rows = read_metrics(run_dir), read_epoch_table(run_dir)
    return {
        "threads": threads,
        "training_s": metrics["wall_time_s"],
        "command_s": round(command_s, 1),
        "training_over_budget": round(metrics["wall_time_s"] / budget_s, 3),
        "command_over_budget": round(command_s / budget_s, 3),
        "epochs": metrics["epochs"],
        "last_lr_over_peak": rows[-1]["lr"] / PEAK_LR,
    }


def main(argv: list[str] | None = None) -> None:
    args = argument_parser(__doc__.splitlines()[0]).parse_args(argv)
    budget_s = 10 if args.quick else 60
    print(f"machine: {machine_line()}")
    print(f"budget: {budget_s} s, tiny synthetic set (4 photographs 64x64), one-cycle peak lr {PEAK_LR}")
    threads_before = os.environ.get("OMP_NUM_THREADS")
    try:
        with tempfile.TemporaryDirectory(prefix="retina-seg-budget-") as scratch:
            runs = [budgeted_run(budget_s, threads, Path(scratch) / f"threads{threads}") for threads in (1, 2)]
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)
        if threads_before is not None:
            os.environ["OMP_NUM_THREADS"] = threads_before
    headers = [
        "threads",
        "training s",
        "command s",
        "training / budget",
        "command / budget",
        "epochs",
        "last lr / peak",
    ]
    print(
        markdown_table(
            headers,
            [
                [r["threads"], r["training_s"], r["command_s"], r["training_over_budget"], r["command_over_budget"]]
                + [r["epochs"], f"{r['last_lr_over_peak']:.1e}"]
                for r in runs
            ],
        )
    )
    save_results(args.json, {"quick": args.quick, "budget_s": budget_s, "runs": runs})
    ratios = ", ".join(f"{r['training_over_budget']:.3f}" for r in runs)
    print(f"training time / budget (1 thread, 2 threads): {ratios}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
