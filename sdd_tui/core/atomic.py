"""Writes that readers see whole or not at all: a temporary file, fsync, rename, fsync of the folder.

Every file of the run history (store.json, a run folder's run.json and rounds.json, checkpoints) is
written through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SddError

if TYPE_CHECKING:  # filelock costs a tenth of a second to import: only commands that write pay it
    from filelock import FileLock


def fsync_dir(directory: Path) -> None:
    """Make a rename durable: without it a power cut can bring the old name back."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status): setting it
    and back, the only portable way, would let another thread create a file with the wrong mode meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path: Path) -> tuple[int, str]:
    """A temporary file beside `path` with the mode any new file gets (0666 less the umask), not mkstemp's
    0600: a home shared by a group stays readable and writable by the group under umask 002."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except OSError:  # a file system without modes (some network or FAT mounts): keep what it gave
        pass
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file so that readers see the old or the new content, never a mix.

    `durable=False` skips both fsyncs (a bulk import syncs once at its end instead)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def write_json(path: Path, value: Any, durable: bool = True) -> None:
    """Compact JSON, written atomically (ASCII: any text, even a lone surrogate from argv, round-trips)."""
    atomic_write_bytes(path, json.dumps(value, separators=(",", ":")).encode("ascii"), durable)


class _WriteErrors:
    """A file's write() that remembers the OSError (ENOSPC, EDQUOT, EIO) torch.save would turn into a
    RuntimeError about positions."""

    def __init__(self, handle):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, fsync and rename: the old file survives any failure."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = _WriteErrors(handle)
            try:
                torch.save(obj, writer)
            except RuntimeError:  # torch's zip writer reports a full disk as 'unexpected pos': say what it was
                if writer.error is not None:
                    raise writer.error from None
                raise
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unwritable(what: Path, error: OSError) -> SddError:
    return SddError(f"cannot write in {what} ({error.strerror or error}); is it read-only? pass --home DIR")


@contextmanager
def hold(lock: FileLock, what: Path) -> Iterator[None]:
    """Hold a cross-process lock; a timeout or an unwritable folder is a one-line SddError, not a traceback."""
    from filelock import Timeout

    try:  # filelock retries a lock file it cannot create until the timeout: say why at once instead
        os.close(os.open(lock.lock_file, os.O_RDWR | os.O_CREAT, 0o666))  # less the umask, as any new file
        lock.acquire()
    except Timeout:
        raise SddError(f"{what} is locked by another process (waited {lock.timeout:.0f} s for {lock.lock_file}); "
                       f"try again when it is done") from None
    except OSError as error:
        raise _unwritable(what, error) from None
    try:
        yield
    finally:
        lock.release()
