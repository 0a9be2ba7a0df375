"""What every benchmark shares: interleaved measuring, tables and the machine line."""

import argparse
import datetime
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from retina_seg.launch.resources import cpu_model
from retina_seg.utils.atomic import write_json_atomic

# A run of seconds: four generated 64x64 photographs, batches of 2, two epochs.
TINY_SYNTHETIC_RUN = [
    "data.source.n_train=4",
    "data.source.n_val=2",
    "data.source.n_test=2",
    "data.source.height=64",
    "data.source.width=64",
    "data.batch_size=2",
    "trainer.max_epochs=2",
]

# Where a CUDA device would be measured; this project's CPU machines have none (see README).
GPU_NOT_MEASURED = "not measured (no GPU on this machine)"


def quiet_libraries() -> None:
    """Keep the benchmark's own lines readable: Lightning's start-up chatter and data-loader advice."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`srun` command is available.*")
    warnings.filterwarnings("ignore", message=".*isinstance(treespec, LeafSpec).*")


class Aborted(RuntimeError):
    """Another loop failed: this one stops too instead of waiting for a turn that never comes."""


class Turns:
    """Lets loops running in threads take turns, one at a time, so load from other processes falls on all
    of them alike. After each full round the order moves on by one place (A B C, B C A, C A B, ...), so
    no loop always opens a round."""

    def __init__(self, names: Sequence[str]):
        self.order = list(names)
        self.current: int | None = None  # no turn until begin()
        self.failed = False
        self.condition = threading.Condition()

    def begin(self) -> None:
        """Give the first turn, once every thread has started: a loop that ran while the others' threads
        were still being created measured a few percent slower in every later round here."""
        with self.condition:
            self.current = 0
            self.condition.notify_all()

    def wait(self, name: str) -> None:
        with self.condition:
            self.condition.wait_for(
                lambda: self.failed or (self.current is not None and self.order[self.current] == name)
            )
            if self.failed:
                raise Aborted(f"{name} stopped because another loop failed")

    def pass_on(self, name: str) -> None:
        with self.condition:
            self.current = self.order.index(name) + 1
            if self.current == len(self.order):
                self.order = self.order[1:] + self.order[:1]
                self.current = 0
            self.condition.notify_all()

    def leave(self, name: str) -> None:
        """The loop is finished: the next one in the order goes on. The thread then waits for all the
        others, because a thread exiting while another loop runs slowed that loop's steps several-fold
        here (each thread owns its own OpenMP thread team)."""
        with self.condition:
            index = self.order.index(name)
            self.order.remove(name)
            self.current = index % len(self.order) if self.order else 0
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.failed or not self.order)

    def abort(self) -> None:
        with self.condition:
            self.failed = True
            self.condition.notify_all()


class WindowClock:
    """One loop's stopwatch: `warmup` untimed steps, then `rounds` timed windows of `steps` steps each,
    handing the turn to the next loop between windows. A window runs from when the loop gets its turn
    back to the end of its last step, so it covers whole steps (data loading and hooks included)."""

    def __init__(self, name: str, turns: Turns, warmup: int, steps: int, rounds: int):
        if min(warmup, steps, rounds) < 1:
            raise ValueError(f"{name}: warmup, steps and rounds must each be >= 1, got {warmup}, {steps}, {rounds}")
        self.name, self.turns = name, turns
        self.warmup, self.steps, self.rounds = warmup, steps, rounds
        self.done_steps = 0
        self.started = 0.0
        self.seconds_per_step: list[float] = []

    def step_done(self) -> bool:
        """Count a finished step; True when the last window has ended and the loop should stop."""
        self.done_steps += 1
        timed = self.done_steps - self.warmup
        if timed < 0 or timed % self.steps:
            return False
        if timed > 0:
            self.seconds_per_step.append((time.perf_counter() - self.started) / self.steps)
            if len(self.seconds_per_step) == self.rounds:
                return True
        self.turns.pass_on(self.name)
        self.turns.wait(self.name)
        self.started = time.perf_counter()
        return False


def run_in_turns(
    loops: dict[str, Callable[[WindowClock], None]], warmup: int, steps: int, rounds: int
) -> dict[str, list[float]]:
    """Run each loop in its own thread, taking turns window by window; each loop calls
    ``clock.step_done()`` after every step and stops when it returns True. Returns each loop's seconds
    per step, one value per window (round)."""
    turns = Turns(list(loops))
    clocks = {name: WindowClock(name, turns, warmup, steps, rounds) for name in loops}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            turns.wait(name)
            loops[name](clocks[name])
            if len(clocks[name].seconds_per_step) < rounds:
                raise RuntimeError(
                    f"{name}: its loop ended after {clocks[name].done_steps} steps, before "
                    f"{warmup} + {rounds} x {steps} (too few training batches)"
                )
            turns.leave(name)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread below
            errors.append(error)
            turns.abort()

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in loops]
    for thread in threads:
        thread.start()
    turns.begin()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]  # the first failure; the others only stopped because of it
    return {name: clock.seconds_per_step for name, clock in clocks.items()}


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of per-round ratios: each ratio compares two measurements taken moments apart."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """Date, CPU, cores, torch and its threads: the context a number needs to be compared later."""
    return (
        f"{datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, python {platform.python_version()}"
    )


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small inputs and few repetitions: under a minute, for CI and fast checks"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write every measured number to this JSON file (atomically)",
    )
    return parser


def save_results(path: Path | None, results: dict) -> None:
    if path is not None:
        write_json_atomic(path, {"machine": machine_line(), **results})
        print(f"results written to {path}")


def run_command(module: str, args: list[str]) -> float:
    """Run an entrypoint as a user would; returns its wall time; a failure stops the benchmark, naming it."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"python -m {module} {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def fail(message: str) -> None:
    """Stop with a message that names what is wrong, and a non-zero exit status."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)
