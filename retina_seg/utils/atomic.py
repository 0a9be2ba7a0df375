"""Atomic file writes: a reader (the report, a resumed sweep) never sees half a file, and a kill at any moment
leaves either the old file or the new one. The temporary file is made beside its target (never in TMPDIR,
which may be another filesystem, where a rename is a copy), flushed to disk, then renamed. A write that does not
fit raises a DiskFullError naming the target and its filesystem, its partial file already removed."""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .disk_space import DiskFullError, is_disk_full

TEMPORARY_SUFFIX = ".tmp"


def write_atomic(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it into place. ``write``
    should close what it opens before it raises: an unlinked file still open keeps its space."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    except OSError as error:  # a full directory block on some filesystems
        if is_disk_full(error):
            raise DiskFullError(path) from error
        raise
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)  # the rename itself survives a power loss
    except BaseException as error:
        written = Path(tmp).stat().st_size if Path(tmp).exists() else None
        full = DiskFullError(path, written) if is_disk_full(error) else None  # measured before the space is freed
        Path(tmp).unlink(missing_ok=True)
        if full is not None:
            raise full from error
        raise
    return path


def _fsync(path: Path | str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path | str, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def remove_partial_writes(*folders: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folders`` (call it only while owning them)."""
    partial = [path for folder in folders for path in Path(folder).glob(f".*{TEMPORARY_SUFFIX}")]
    for path in partial:
        path.unlink(missing_ok=True)
    return partial
