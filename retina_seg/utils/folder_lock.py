"""One writer per folder: an exclusive lock on ``<folder>/.lock``, which also names its owner.

The lock is an advisory ``flock`` held for the owner's lifetime: the kernel releases it when the owner
exits, however it exits (``kill -9`` included), so the lock of a dead process never blocks anyone and a
reused process id cannot fake an owner. The file holds the owner's host, pid and job id, so whoever is
refused learns who holds the folder, and whoever takes over an abandoned lock file says whose it was.
"""

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"

# Locks this process holds, by folder: taking a folder twice (the entrypoint, then the pipeline) is a no-op.
_HELD: dict[Path, int] = {}


class FolderLockedError(RuntimeError):
    """Another live process writes into the folder; the message names the folder and that owner."""


def owner_record(job_id: str | None) -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job_id": job_id,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def describe(owner: dict[str, Any]) -> str:
    return f"job {owner.get('job_id')} (pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('since')})"


def lock_folder(folder: Path | str, job_id: str | None = None) -> None:
    """Take ``folder`` for this process until it exits or calls ``unlock_folder``; FolderLockedError if taken."""
    folder = Path(folder).resolve()
    if folder in _HELD:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise FolderLockedError(
                f"{folder} is in use by {describe(owner)}; lock file {path}. Wait for it "
                "to finish, or choose another folder"
            ) from None
        if _is_current(fd, path):
            break
        os.close(fd)  # its owner removed that file between our open and our lock: take the new one
    previous = _read_owner(fd)
    if previous:
        log.info("%s: taking over the lock of %s, which is no longer running", folder, describe(previous))
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(owner_record(job_id)) + "\n").encode(), 0)
    os.fsync(fd)
    _HELD[folder] = fd


def folder_in_use(folder: Path | str) -> bool:
    """Whether a live process (this one included) holds ``folder``'s lock; the lock is not taken."""
    folder = Path(folder).resolve()
    if folder in _HELD:
        return True
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing gives back a lock taken here
    return False


@contextlib.contextmanager
def exclusive(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block, waiting for it if needed; the
    kernel gives it back if the holder dies, so no waiter ever breaks a live holder's lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def unlock_folder(folder: Path | str) -> None:
    """Give the folder back (the lock file is removed first, so nobody locks a file about to vanish)."""
    folder = Path(folder).resolve()
    fd = _HELD.pop(folder, None)
    if fd is not None:
        (folder / LOCK_FILE).unlink(missing_ok=True)
        os.close(fd)


def _read_owner(fd: int) -> dict[str, Any]:
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _is_current(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
