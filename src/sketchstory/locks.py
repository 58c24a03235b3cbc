"""One writer at a time: OS locks on output folders, story folders and libraries.

The locks are ``flock`` locks, which the kernel drops when their process ends however it ends
(``kill -9`` included), so a lock file left on disk by a killed run never blocks the next one: a
lock file is only a place to lock, and it names its holder's PID for the loser's message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; SQLite and the atomic renames still keep files whole
    fcntl = None  # type: ignore[assignment]


class BusyError(ValueError):
    """Another process holds the lock; the message says who and what to do (exit code 2, as bad input)."""


def holder(lock_file: Path) -> str:
    """``pid N`` as the lock file names it, or an empty string when it names none."""
    try:
        pid = Path(lock_file).read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return ""
    return f"pid {pid}" if pid.isdigit() else ""


@contextmanager
def exclusive(lock_file: Path, what: str, advice: str, wait_s: float = 0.0) -> Iterator[int]:
    """Hold an exclusive lock on ``lock_file`` (created if absent) and write this process's PID into it.

    Waits up to ``wait_s`` seconds for another holder, then raises :class:`BusyError`:
    ``"<what> is in use by another sketchstory process (pid N): <advice>"``. Yields the open descriptor.
    """
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, Path(lock_file), what, advice, wait_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)  # closing drops the lock


@contextmanager
def locked_folder(folder: Path, what: str, advice: str, wait_s: float = 10.0) -> Iterator[None]:
    """Hold an exclusive lock on a folder itself (no file is left in it), waiting up to ``wait_s`` seconds."""
    if fcntl is None:  # Windows cannot open a folder as a file; atomic renames still keep the story whole
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        _acquire(fd, None, what, advice, wait_s)
        yield
    finally:
        os.close(fd)


def _acquire(fd: int, lock_file: Path | None, what: str, advice: str, wait_s: float) -> None:
    if fcntl is None:
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                who = holder(lock_file) if lock_file is not None else ""
                raise BusyError(f"{what} is in use by another sketchstory process{f' ({who})' if who else ''}: "
                                f"{advice}") from None
            time.sleep(0.05)
