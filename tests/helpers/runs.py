"""Configs and entrypoint calls for a run: the tiny synthetic run, Hydra composition, the CLI as a user runs it."""

import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from benchmarks.common import TINY_SYNTHETIC_RUN

# The benchmarks' run of seconds (four generated 64x64 photographs, two epochs), with the tests' loss and callbacks.
TINY_RUN = [
    "loss=bce_dice",
    *TINY_SYNTHETIC_RUN,
    "callbacks=minimal",
    "trainer.enable_model_summary=false",
]
# TINY_RUN on a network 4 channels wide: every prediction with it is fast on a busy 2-core machine.
TINY_NET = [*TINY_RUN, "model.base_width=4", "trainer.enable_progress_bar=false"]


def compose(overrides: list[str], output_dir: Path | None = None, config_name: str = "train"):
    """The config an entrypoint runs with, its output folder pinned: train's settled and checked as
    `retina-seg-train` settles it (retina_seg/training/run_config.py), the others' as Hydra hands them over."""
    from retina_seg.launch.composition import compose_config, run_config
    from retina_seg.training.run_config import train_config

    if config_name == "train":
        return train_config(overrides, output_dir)
    pinned = [f"paths.output_dir={output_dir}"] if output_dir is not None else []
    return run_config(compose_config(config_name, [*overrides, *pinned]))


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run an entrypoint as a user would (python -m ...), capturing its output and exit code. A process of its own:
    for the tests about what a process shows (signals, kills, the environment it starts with, `python -m` itself)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Outcome:
    """What a command left: its exit code and its output (the fields of subprocess.CompletedProcess the tests read)."""

    returncode: int
    stdout: str
    stderr: str


def run_main(
    module: str, *args: str, cwd: Path | None = None, timeout: int | None = None, env: dict | None = None
) -> Outcome:
    """Run an entrypoint's ``main`` in this process, as its console script does (the same argv, exit code and
    output), without a new interpreter importing torch and Lightning again. The working folder, the environment
    and torch's thread count, the logging levels and handlers and the warning filters are restored afterwards;
    ``timeout`` is run_cli's, left to pytest-timeout here."""
    import torch

    main = _main_of(module)
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_env, threads = sys.argv, Path.cwd(), dict(os.environ), torch.get_num_threads()
    saved_logging = _logging_state()
    held_before = _held_folder_locks()
    code: object = 0
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = [module, *args]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            try:
                returned = main()
                code = returned if isinstance(returned, int) else 0  # a console script exits with what main returns
            except SystemExit as exit_:
                code = exit_.code
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
        _restore_logging(saved_logging)
        _release_folder_locks(held_before)
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    if not isinstance(code, int | None):
        stderr.write(f"{code}\n")  # SystemExit("message"): Python prints it and exits 1
    return Outcome(returncode, stdout.getvalue(), stderr.getvalue())


def run_benchmark(module: str, *args: str, cwd: Path | None = None, timeout: int | None = None) -> Outcome:
    """A benchmark's main in this process (run_main), and the entrypoints it runs (benchmarks.common.run_command)
    in this process too: the same mains with the same arguments, without a new interpreter importing torch and
    Lightning for each of them. What the benchmark times then leaves out the interpreter's start."""
    benchmark = importlib.import_module(module)
    if not hasattr(benchmark, "run_command"):
        return run_main(module, *args, cwd=cwd, timeout=timeout)
    with mock.patch.object(benchmark, "run_command", _command_in_this_process):
        return run_main(module, *args, cwd=cwd, timeout=timeout)


def _command_in_this_process(module: str, args: list[str]) -> float:
    """benchmarks.common.run_command's contract (the wall time; a failure stops the benchmark, naming the command)."""
    from benchmarks.common import fail

    started = time.perf_counter()
    outcome = run_main(module, *args)
    if outcome.returncode != 0:
        fail(f"{module} {' '.join(args)} exited with {outcome.returncode}:\n{outcome.stderr[-2000:]}")
    return time.perf_counter() - started


def _main_of(module: str):
    """The function ``python -m module`` calls: the module's ``main``, or its package's ``__main__.main``."""
    imported = importlib.import_module(module)
    return getattr(imported, "main", None) or importlib.import_module(f"{module}.__main__").main


def _logging_state() -> dict:
    """Every logger's level, handlers and propagation, which a command configures for itself (Hydra's job logging)."""
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    return {lg: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers}


def _restore_logging(state: dict) -> None:
    """Put every logger back; close the handlers the command added (Hydra's file handler on the run's log file)."""
    for logger, (level, handlers, propagate, disabled) in state.items():
        for added in set(logger.handlers) - set(handlers):
            added.close()
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate, logger.disabled = propagate, disabled


def _held_folder_locks() -> set:
    from retina_seg.utils import folder_lock

    return set(folder_lock._HELD)


def _release_folder_locks(held_before: set) -> None:
    """The folder locks the command left: a process that exits releases them; this one goes on."""
    from retina_seg.utils import folder_lock

    for folder in set(folder_lock._HELD) - held_before:
        folder_lock.unlock_folder(folder)


_LOCK_HOLDER = (
    "import sys, time; from retina_seg.utils.folder_lock import lock_folder; lock_folder(sys.argv[1], sys.argv[2]); "
    "print('locked', flush=True); time.sleep(600)"
)


@contextlib.contextmanager
def folder_held_by_another_process(folder: Path, job_id: str):
    """Another live process holds ``folder``'s lock (as job ``job_id``) for the block; yields its pid. It is
    killed (SIGKILL) at the end, so its lock is left as a dead process leaves it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(folder), job_id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
