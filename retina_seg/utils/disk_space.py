"""A full disk, said in one line (which file, which filesystem, how much was free), and space set aside so that
a record can still be written once the disk is full."""

import errno
import os
from pathlib import Path

# Both mean "this write does not fit": the filesystem is full, or the user's quota on it is.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A write that did not fit on its filesystem; the message names the file, the mount point and the space."""

    def __init__(self, path: Path | str, written: int | None = None):
        path = Path(path)
        self.mount_point = mount_point(path)
        usage = os.statvfs(self.mount_point)
        self.free, self.total = usage.f_bavail * usage.f_frsize, usage.f_blocks * usage.f_frsize
        what = f" after {human_size(written)} of it" if written is not None else ""
        super().__init__(
            errno.ENOSPC,
            f"no space left on device writing {path}{what} (filesystem {self.mount_point}: "
            f"{human_size(self.free)} free of {human_size(self.total)})",
            str(path),
        )

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error``, or an error it arose from, is the filesystem refusing a write for want of space."""
    return no_space_error(error) is not None


def no_space_error(error: BaseException | None) -> OSError | None:
    """The OSError that says "no space" in ``error``'s chain, or None. torch.save reports a full disk as a
    RuntimeError of its zip writer, raised while handling that OSError."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in _NO_SPACE:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def mount_point(path: Path | str) -> Path:
    """The mount point of the filesystem that holds ``path`` (or would hold it: its nearest existing parent)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def human_size(size: int) -> str:
    """``512 B``, ``12.0 KiB``, ``2.7 MiB``, ``1.5 GiB``: a size as a person reads it."""
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:.1f} {unit}"


def set_space_aside(path: Path | str, size: int) -> None:
    """Fill ``path`` with ``size`` bytes that stay allocated until the file is deleted. Random bytes, because a
    compressing filesystem (ZFS, btrfs) stores zeros in no space at all; written and synced, because a sparse
    or preallocated-but-unwritten file is not counted the same way on every filesystem."""
    try:
        with open(path, "wb") as handle:
            handle.write(os.urandom(size))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        Path(path).unlink(missing_ok=True)
        if error.errno in _NO_SPACE:
            raise DiskFullError(path) from error
        raise
