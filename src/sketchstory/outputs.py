"""Output folders: sketchstory writes only into folders that are new, empty, or its own.

A folder becomes sketchstory's when a command writes into it: it leaves the marker file
``.sketchstory-output`` there, which is also the folder's lock (one run at a time writes into it;
see :mod:`sketchstory.locks`). Any other folder that holds files is refused unless the user says
``--force``; the filesystem root and the story's own folder are refused always, since writing
there replaces the user's own files (``story.json``, sketches under ``panels/``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sketchstory.locks import exclusive

MARKER = ".sketchstory-output"
# Folders written before the marker existed: a layout of ours with its record file (generate's run.json,
# an evaluation's report.json, a benchmark's bench.json), or a batch's batch.json.
_LAYOUTS = {
    "run.json": {"panels", "conditions", "memory", "strip.png", "story.json", "run.json"},
    "report.json": {"report.json", "report.md", "metrics.png", "time_vs_panels.png"},
    "bench.json": {"bench.json", "bench.md"},
    "ablation.json": {"ablation.json", "ablation.png", "cells"},
}


class OutputError(ValueError):
    """An output folder sketchstory must not write into; the message says which to use (exit code 2)."""


def owned(folder: Path) -> bool:
    """``folder`` was written by sketchstory: it holds the marker (or an older version's outputs)."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    names = {p.name for p in folder.iterdir()}
    if any(record in names and names <= layout for record, layout in _LAYOUTS.items()):
        return True
    try:
        return json.loads((folder / "batch.json").read_text(encoding="utf-8")).get("schema") == "sketchstory/batch"
    except (OSError, ValueError, AttributeError):
        return False


def check_output(out: Path, *, inputs: Iterable[Path] = (), force: bool = False) -> None:
    """Refuse ``out`` unless it is new, empty, or sketchstory's (``force``: any folder but the never-allowed ones).

    ``inputs`` are folders the command reads the user's files from (the story's folder): writing
    into one of them is refused even with ``force``.
    """
    out = Path(out)
    where = Path(os.path.abspath(out))
    resolved = where.resolve()
    if resolved.parent == resolved:
        raise OutputError(f"output folder {out} is the filesystem root: give a folder of its own, e.g. -o out/story")
    for folder in inputs:
        if resolved == Path(folder).resolve():
            raise OutputError(f"output folder {out} is the story's own folder (or another folder this command "
                              "reads), whose files the outputs would replace: give a new folder, e.g. -o out/story")
    if not out.is_dir() or force or owned(out) or not any(out.iterdir()):
        return  # a path in the way that is not a folder is reported when it cannot be written
    raise OutputError(f"output folder {out} holds files that sketchstory did not write; give a new or empty folder, "
                      "or add --force to write into it anyway")


def check_writable(out: Path) -> None:
    """Fail before any model work if the output folder cannot be made or written (exit code 4)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check."):
            pass
    except OSError as e:
        raise OSError(e.errno, f"output folder {out} is not writable ({e.strerror}); choose another with -o",
                      str(out)) from None


@contextmanager
def output_folder(out: Path, *, inputs: Iterable[Path] = (), force: bool = False) -> Iterator[Path]:
    """:func:`check_output`, :func:`check_writable`, then hold the folder (:func:`claim_output`) while writing."""
    out = Path(out)
    check_output(out, inputs=inputs, force=force)
    check_writable(out)
    with claim_output(out):
        yield out


@contextmanager
def claim_output(out: Path) -> Iterator[None]:
    """Mark ``out`` (which must exist) as sketchstory's and hold its lock; temporary files left by a
    killed run are removed, since no other run can be writing them now."""
    with exclusive(Path(out) / MARKER, f"output folder {out}",
                   "wait for that run to finish, or write to another folder"):
        remove_leftovers(Path(out))
        yield


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary ``.NAME.*.part.EXT`` files of interrupted atomic writes in ``folder`` and its
    ``panels``, ``conditions`` and ``memory`` folders (not deeper: those are other runs' folders)."""
    places = [folder] + [folder / name for name in ("panels", "conditions", "memory")]
    gone = [p for place in places for p in place.glob(".*.part*") if p.is_file()]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone
