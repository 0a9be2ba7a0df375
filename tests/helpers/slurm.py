"""Talking to the local SLURM cluster (devtools/slurm_cluster/) from a test: client commands, accounting,
waiting for a state, the submitit launcher's settings and logs, and a preempted-and-requeued sweep."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retina_seg.records.run_folder import read_epoch_table
from tests.helpers.sweeps import SWEEP_RUN

# Small resources, so two array tasks share the 2-CPU test node; a short time limit.
ON_SLURM = [
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=5",
]
TERMINAL = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
)


def run(cluster, *cmd: str, timeout: float = 30) -> str:
    """Run a SLURM client command against the test cluster and return its stdout."""
    return subprocess.run(
        cmd, env=cluster.env, check=True, capture_output=True, text=True, timeout=timeout
    ).stdout.strip()


def poll(predicate, timeout: float, what: str):
    """Call `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def sacct_fields(cluster, job: str, *fields: str) -> dict[str, list[str]]:
    """{job id: the values of `fields`} for every allocation of `job` (one per array task), from accounting."""
    out = run(cluster, "sacct", "-n", "-X", "-P", "-j", job, "-o", ",".join(["JobID", *fields]))
    rows = (line.split("|") for line in out.splitlines() if line)
    return {jobid: values for jobid, *values in rows}


def job_states(cluster, job: str) -> dict[str, tuple[str, str]]:
    """{job id: (state, exit code)} for every allocation of `job`."""
    allocations = sacct_fields(cluster, job, "State", "ExitCode")
    # A cancelled job reads "CANCELLED by 0"; keep the first word.
    return {jobid: (state.split()[0], code) for jobid, (state, code) in allocations.items()}


def wait_ended(cluster, job: str, n: int = 1, timeout: float = 30) -> dict[str, tuple[str, str]]:
    """Wait until sacct reports `n` allocations of `job`, all in a terminal state."""

    def ended():
        states = job_states(cluster, job)
        done = len(states) == n and all(s.startswith(TERMINAL) for s, _ in states.values())
        return states if done else None

    return poll(ended, timeout, f"job {job} to end (sacct)")


def submitit_logs(sweep_dir: Path) -> str:
    """Everything the SLURM tasks of a sweep printed (submitit's per-task logs)."""
    return "".join(p.read_text(errors="replace") for p in sorted((sweep_dir / ".submitit").rglob("*_log.*")))


def preempt_once(cluster, sweep_dir: Path, log_path: Path, *overrides: str) -> tuple[str, int]:
    """Launch a one-run SLURM sweep, send its job USR2 once it has a last.ckpt, release the requeued job
    and wait for the launcher to succeed. Returns the job id and the epochs done when it was signalled."""
    command = [
        sys.executable,
        "-m",
        "retina_seg.train",
        "-m",
        *SWEEP_RUN,
        *ON_SLURM,
        *overrides,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    with open(log_path, "w") as log:
        launcher = subprocess.Popen(command, env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        run_dir = sweep_dir / "0"
        poll(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), 180, "the first last.ckpt")
        job = next(p.name for p in (sweep_dir / ".submitit").iterdir() if p.name.isdigit())
        done_when_signalled = len(read_epoch_table(run_dir))
        run(cluster, "scancel", "--signal=USR2", job)
        poll(
            lambda: re.search(
                r"JobState=PENDING Reason=BeginTime.*Restarts=1", run(cluster, "scontrol", "-o", "show", "job", job)
            ),
            60,
            "the requeue",
        )
        # SLURM holds a requeued job for about two minutes (BeginTime); release it now.
        run(cluster, "scontrol", "update", f"jobid={job}", "StartTime=now")
        assert launcher.wait(timeout=300) == 0, log_path.read_text()[-3000:]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    return job, done_when_signalled
