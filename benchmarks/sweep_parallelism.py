"""Wall time of the same 4-run sweep run one after another (basic launcher) and side by side (submitit_local,
and SLURM when the local cluster can run), each parallel run on 1 CPU.

    python -m benchmarks.sweep_parallelism [--quick] [--no-slurm] [--json PATH]

Every sweep is the real command (`python -m retina_seg.train -m ...`) timed from start to exit, so process
start-up, data generation, training, validation, testing and the launcher's own waiting all count. The
sequential sweep keeps torch's default threads (all cores). SLURM uses the local development cluster
(devtools/slurm_cluster/), started here when it is not up and stopped again afterwards.
The last line printed is the parallel/sequential wall-time ratio of each parallel launcher.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import TINY_SYNTHETIC_RUN, argument_parser, fail, machine_line, markdown_table, save_results

SWEEP = ["optimizer.lr=1e-3,3e-4,1e-4,3e-5"]
QUIET = ["logger=none", "callbacks=minimal", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
# Quick: start-up dominates; full: training dominates (about half a minute per run on an idle 2-core CPU).
QUICK_RUN = TINY_SYNTHETIC_RUN
FULL_RUN = [
    "data.source.n_train=16",
    "data.source.n_val=4",
    "data.source.n_test=4",
    "data.source.height=160",
    "data.source.width=160",
    "data.batch_size=4",
    "trainer.max_epochs=12",
]
ONE_CPU = ["hydra.launcher.cpus_per_task=1"]
LAUNCHERS = {
    "basic (sequential)": [],
    "submitit_local": ["hydra/launcher=local", *ONE_CPU],
    "slurm": ["hydra/launcher=slurm", *ONE_CPU, "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=60"],
}


def time_sweep(name: str, overrides: list[str], sweep_dir: Path, env: dict | None) -> float:
    """Seconds the sweep command took; it must exit 0 with four completed runs."""
    command = [sys.executable, "-m", "retina_seg.train", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        fail(f"{name} sweep exited with {result.returncode}:\n{result.stderr[-3000:]}")
    statuses = [json.loads(p.read_text())["status"] for p in sorted(sweep_dir.glob("*/metrics.json"))]
    if statuses != ["completed"] * 4:
        fail(f"{name} sweep in {sweep_dir}: expected 4 completed runs, found {statuses}")
    return seconds


def slurm_cluster():
    """(the local cluster, whether this call started it), or (None, False) with the reason printed."""
    from devtools.slurm_cluster import SlurmCluster, SlurmError, missing_binaries

    missing = missing_binaries()
    if missing:
        print(f"slurm: skipped, not installed ({', '.join(missing)}); see .ci/install-debian-packages.sh")
        return None, False
    cluster = SlurmCluster()
    try:
        return cluster, cluster.start()
    except (SlurmError, OSError) as error:
        cluster.stop()
        print(f"slurm: skipped, the cluster did not start: {error}")
        return None, False


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--no-slurm", action="store_true", help="measure the basic and submitit_local launchers only")
    args = parser.parse_args()
    run = [*(QUICK_RUN if args.quick else FULL_RUN), *QUIET, *SWEEP]
    cluster, we_started_it = (None, False) if args.no_slurm else slurm_cluster()
    launchers = {name: o for name, o in LAUNCHERS.items() if name != "slurm" or cluster is not None}
    seconds = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sweep_parallelism_") as tmp:
            for name, overrides in launchers.items():
                env = cluster.env if name == "slurm" else None
                seconds[name] = time_sweep(name, [*run, *overrides], Path(tmp) / name.split()[0], env)
                print(f"{name}: {seconds[name]:.1f} s", flush=True)
    finally:
        if we_started_it:
            cluster.stop()
    sequential = seconds["basic (sequential)"]
    ratios = {name: s / sequential for name, s in seconds.items() if name != "basic (sequential)"}
    print(f"\n{machine_line()}; {'quick' if args.quick else 'full'} mode, 4 runs: {' '.join(run)}")
    print(
        markdown_table(
            ["launcher", "wall time (s)", "ratio to sequential"],
            [[name, f"{s:.1f}", f"{s / sequential:.2f}"] for name, s in seconds.items()],
        )
    )
    save_results(
        args.json,
        {"mode": "quick" if args.quick else "full", "run": run, "wall_time_s": seconds, "ratio_to_sequential": ratios},
    )
    print("parallel/sequential wall-time ratio: " + ", ".join(f"{name} {r:.2f}" for name, r in ratios.items()))


if __name__ == "__main__":
    main()
