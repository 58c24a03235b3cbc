"""Atomic file writes: a finished output is either complete on disk or absent, never half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    The temporary file keeps the target's suffix so that writers that infer the format from the
    name (PIL, safetensors) work unchanged. On any exception it is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(target: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def atomic_write_text(target: Path, text: str) -> Path:
    return atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_bytes(target: Path, data: bytes) -> Path:
    return atomic_write(target, lambda p: p.write_bytes(data))
