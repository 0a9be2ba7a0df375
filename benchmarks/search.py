"""A grid and an Optuna search (TPE with median pruning) over the same small space on the same two workers: the
best validation objective each found, the CPU-minutes each spent, and the CPU-minutes each needed to reach the
grid's best; and the idle worker time of the grid's batches against the search's workers, which have no barrier.

    python -m benchmarks.search [--quick] [--kaggle-root PATH] [--epochs N] [--json PATH]

Both are the real command (`python -m retina_seg.train -m ...`) with `hydra/launcher=local`, two processes of
one CPU each: the grid in batches of two (Hydra's basic sweeper: a batch waits for its slower run), the search as
two workers that each ask the study for the next trial as soon as theirs ends. A run's time is from its config
being written (`.hydra/config.yaml`, the run's start) to its `metrics.json` last being written (its end), so
process start-up between runs counts as idle. Idle worker time = workers x (last end - first start) - the time
spent in runs. Only completed runs count towards the best value: a pruned run stopped before its end.
The last line printed is the ratio of CPU-minutes to the grid's best, search over grid's whole CPU-minutes.
"""

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import TINY_SYNTHETIC_RUN, argument_parser, fail, machine_line, markdown_table, save_results

WORKERS = 2
# TPE's random start: Optuna's default (10) would leave 2 of 12 trials to the model.
STARTUP_TRIALS = 4
HEADERS = ["method", "runs", "completed", "pruned", "best val IoU", "CPU-min", "CPU-min to grid best", "idle min"]
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
ONE_CPU_EACH = ["hydra/launcher=local", "hydra.launcher.cpus_per_task=1"]
# lr x width x loss: 3 x 2 x 2 = 12 grid points; the search draws from the same ranges.
GRID = ["optimizer.lr=3e-4,1e-3,3e-3", "model.base_width=8,16", "loss=bce_dice,bce_lovasz"]
SPACE = [
    "optimizer.lr=tag(log, interval(3e-4, 3e-3))",
    "model.base_width=choice(8, 16)",
    "loss=choice(bce_dice, bce_lovasz)",
]
# Quick: the plumbing only (one batch of two runs against two trials), in about a minute.
QUICK_GRID = ["optimizer.lr=3e-4,3e-3"]
QUICK_SPACE = [SPACE[0]]


def kaggle_run(root: Path, epochs: int) -> list[str]:
    """The CPU recipe's data, crops, network and optimiser (conf/experiment/kaggle_cpu.yaml) trained for a number of
    epochs instead of a time budget, validating every epoch (the pruner decides per validation), not tested."""
    return [
        "data=retina_kaggle",
        f"data.root={root.resolve()}",
        "augmentation=crops",
        "data.batch_size=8",
        "data.train_repeats=2",
        "trainer.precision=${retina_seg.cpu_precision:}",
        f"trainer.max_epochs={epochs}",
        "trainer.check_val_every_n_epoch=1",
        "test=false",
    ]


def search_overrides(n_trials: int, space: list[str]) -> list[str]:
    return [
        "hydra/sweeper=optuna",
        *space,
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweeper.n_parallel={WORKERS}",
        "hydra.sweeper.sampler.seed=0",
        f"hydra.sweeper.sampler.n_startup_trials={STARTUP_TRIALS}",
        "hydra.sweeper.pruner.name=median",
        f"hydra.sweeper.pruner.n_startup_trials={WORKERS}",
        "hydra.sweeper.pruner.n_warmup_steps=1",
    ]


@dataclass(frozen=True)
class Run:
    start: float
    end: float
    status: str
    value: float | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


def sweep(name: str, overrides: list[str], sweep_dir: Path) -> list[Run]:
    """Run one sweep command (exit 0 required) and read back its runs."""
    command = [sys.executable, "-m", "retina_seg.train", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"{name} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    print(f"{name}: {time.perf_counter() - started:.0f} s wall", flush=True)
    runs = [read_run(d) for d in sorted(sweep_dir.iterdir(), key=lambda d: d.name) if d.name.isdigit()]
    if not runs:
        fail(f"{name}: no run folder in {sweep_dir}")
    return runs


def read_run(run_dir: Path) -> Run:
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    value = metrics.get("val_IoU") if metrics["status"] == "completed" else None
    start = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
    return Run(start, metrics_path.stat().st_mtime, metrics["status"], value)


def cpu_minutes_until(runs: list[Run], moment: float) -> float:
    """CPU-minutes the runs had spent by ``moment`` (one CPU per run)."""
    return sum(max(0.0, min(run.end, moment) - run.start) for run in runs) / 60


def first_reaching(runs: list[Run], target: float) -> Run | None:
    reaching = [run for run in runs if run.value is not None and run.value >= target - 1e-9]
    return min(reaching, key=lambda run: run.end, default=None)


def summary(runs: list[Run], target: float) -> dict:
    first, last = min(run.start for run in runs), max(run.end for run in runs)
    reached = first_reaching(runs, target)
    busy = sum(run.seconds for run in runs)
    completed = [run.value for run in runs if run.value is not None]
    return {
        "runs": len(runs),
        "completed": len(completed),
        "pruned": sum(run.status == "pruned" for run in runs),
        "best_val_IoU": max(completed, default=None),
        "cpu_minutes": busy / 60,
        "wall_minutes": (last - first) / 60,
        "cpu_minutes_to_grid_best": None if reached is None else cpu_minutes_until(runs, reached.end),
        "idle_worker_minutes": (WORKERS * (last - first) - busy) / 60,
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "not reached" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--kaggle-root", type=Path, default=Path("../shared/data/retina-blood-vessel"))
    parser.add_argument("--epochs", type=int, default=6, help="epochs of every run (full mode)")
    args = parser.parse_args()
    if args.quick:
        run, grid, space = [*TINY_SYNTHETIC_RUN, "model.base_width=4"], QUICK_GRID, QUICK_SPACE
    else:
        if not args.kaggle_root.is_dir():
            fail(f"--kaggle-root {args.kaggle_root}: not a folder (the Kaggle set, see docs/data.md)")
        run, grid, space = kaggle_run(args.kaggle_root, args.epochs), GRID, SPACE
    n_grid = 1
    for axis in grid:
        n_grid *= len(axis.split("=", 1)[1].split(","))
    common = [*run, *QUIET, *ONE_CPU_EACH, "seed=0"]
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="search_benchmark_") as tmp:
        grid_runs = sweep("grid", [*common, *grid, f"hydra.sweeper.max_batch_size={WORKERS}"], Path(tmp) / "grid")
        search_runs = sweep("search", [*common, *search_overrides(n_grid, space)], Path(tmp) / "search")
    grid_best = max(run.value for run in grid_runs if run.value is not None)
    results = {"grid": summary(grid_runs, grid_best), "search (TPE + median pruning)": summary(search_runs, grid_best)}
    mode = "quick" if args.quick else "full"
    print(f"\n{mode} mode, {n_grid} runs each, {WORKERS} workers of 1 CPU: {' '.join(run)}")
    print(
        markdown_table(
            HEADERS,
            [
                [
                    name,
                    r["runs"],
                    r["completed"],
                    r["pruned"],
                    fmt(r["best_val_IoU"], 4),
                    fmt(r["cpu_minutes"]),
                    fmt(r["cpu_minutes_to_grid_best"]),
                    fmt(r["idle_worker_minutes"]),
                ]
                for name, r in results.items()
            ],
        )
    )
    to_best = results["search (TPE + median pruning)"]["cpu_minutes_to_grid_best"]
    ratio = None if to_best is None else to_best / results["grid"]["cpu_minutes"]
    save_results(args.json, {"mode": mode, "run": run, "results": results, "ratio": ratio})
    print(
        "search CPU-minutes to the grid's best / grid CPU-minutes (target <= 0.33): "
        + ("not reached" if ratio is None else f"{ratio:.2f}")
    )


if __name__ == "__main__":
    main()
