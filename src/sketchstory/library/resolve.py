"""Which library a command uses, and the file behind a story panel's ``library:ID`` sketch."""

from __future__ import annotations

import os
from pathlib import Path

from sketchstory.library.index import LibraryError
from sketchstory.library.store import Library
from sketchstory.story import LIBRARY_PREFIX

ENV_VAR = "SKETCHSTORY_LIBRARY"


def default_library() -> Path:
    """``$SKETCHSTORY_LIBRARY``, else the user's data folder (``$XDG_DATA_HOME/sketchstory/library``)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "sketchstory" / "library"


def library_path(explicit: Path | str | None = None) -> Path:
    """The library to use: ``explicit`` (a ``--library`` option) if given, else :func:`default_library`."""
    return Path(explicit).expanduser() if explicit else default_library()


def resolve(ref: str, library: Path | str | None = None) -> Path:
    """The sketch file behind ``ref`` (``library:ID`` or a bare id) in ``library`` (default: see above).

    Raises :class:`LibraryError` (a ``ValueError``) naming the library and what to do when there is
    no library there, no such id, or its file is gone.
    """
    entry_id = ref.removeprefix(LIBRARY_PREFIX)
    if not entry_id.strip():
        raise LibraryError(f"{ref!r} names no sketch: write library:ID, with an id from `sketchstory library search`")
    with Library.open(library_path(library)) as lib:
        return lib.path(lib.get(entry_id))
