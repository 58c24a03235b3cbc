"""A sketch library on disk: ``index.sqlite`` plus ``sketches/<ab>/<id>.png``.

An entry's id is the start of the SHA-256 of its normalised pixels, so the same drawing gets the
same id in every library and on every machine (a story that says ``library:ID`` means these exact
lines), and adding a drawing that is already there is a no-op. Files are sharded by the id's first
two characters because 16,000+ files in one folder make file managers and some filesystems crawl.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from PIL import Image

from sketchstory.library.index import Entry, Index, LibraryError, Meta
from sketchstory.locks import exclusive
from sketchstory.provenance import save_png
from sketchstory.sketches import normalize_sketch

INDEX_NAME = "index.sqlite"
ID_LENGTH = 12  # 48 bits: a collision among a million sketches has odds of about 1 in 500 million
DEFAULT_SIDE = 512  # stage 2's native size; larger drawings are shrunk to it, smaller ones kept
THUMB_SIDE = 128


@dataclass(frozen=True)
class Added:
    entry: Entry
    duplicate: bool  # True: the same sketch was already in the library; ``entry`` is that one


def content_hash(sketch: Image.Image) -> str:
    gray = sketch.convert("L")
    return hashlib.sha256(f"{gray.width}x{gray.height}:".encode() + gray.tobytes()).hexdigest()


def library_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The stored size of a picture of ``size``: its aspect kept, long side at most ``side``."""
    w, h = size
    scale = min(1.0, side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def thumbnail_png(sketch: Image.Image) -> bytes:
    thumb = sketch.convert("L")
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


class Library:
    """One library folder. Open with :meth:`open` (read) or :meth:`writer` (build, import, export)."""

    def __init__(self, root: Path, index: Index) -> None:
        self.root = root
        self.index = index

    @classmethod
    def open(cls, root: Path) -> Library:
        root = Path(root)
        if not (root / INDEX_NAME).is_file():
            raise LibraryError(
                f"no sketch library at {root}: build one with `sketchstory library build PROMPTS`, import "
                "drawings with `sketchstory library import FOLDER`, or point --library or SKETCHSTORY_LIBRARY "
                "at an existing library folder")
        return cls(root, Index(root / INDEX_NAME))

    @classmethod
    @contextmanager
    def writer(cls, root: Path, side: int = DEFAULT_SIDE) -> Iterator[Library]:
        """The library at ``root`` (created if absent) for writing, held by this process alone."""
        root = Path(root)
        if root.is_dir() and any(root.iterdir()) and not (root / INDEX_NAME).is_file():
            raise LibraryError(f"{root} is a folder that is not empty and not a sketch library; use a new folder "
                               "or an existing library")
        if side < 8:
            raise LibraryError(f"sketch side {side} is too small: use 64 or more (512 is stage 2's size)")
        root.mkdir(parents=True, exist_ok=True)
        with exclusive(root / ".writer.lock", f"the sketch library at {root}",
                       "wait for it to finish (searching the library meanwhile is fine)"):
            library = cls(root, Index(root / INDEX_NAME, create=True))
            try:
                if library.index.get_meta("side") is None:
                    library.index.set_meta("side", str(side))
                yield library
            finally:
                library.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()

    @property
    def side(self) -> int:
        return int(self.index.get_meta("side") or DEFAULT_SIDE)

    def get(self, entry_id: str) -> Entry:
        entry = self.index.by_id(entry_id.strip().lower())
        if entry is None:
            raise LibraryError(f"no sketch {entry_id!r} in the library at {self.root}; "
                               "find ids with `sketchstory library search WORDS` or `sketchstory library list`")
        return entry

    def path(self, entry: Entry) -> Path:
        path = self.root / entry.file
        if not path.is_file():
            raise LibraryError(f"the library at {self.root} lists sketch {entry.id} but its file {entry.file} is "
                               "missing; restore the library folder from a copy or rebuild it")
        return path

    def normalise(self, picture: Image.Image) -> Image.Image:
        """Any picture -> a clean sketch at this library's size (raises SketchError if unusable)."""
        return normalize_sketch(picture, library_size(picture.size, self.side))

    def add(self, sketch: Image.Image, meta: Meta, provenance: dict[str, Any] | None = None) -> Added:
        """Store an already clean sketch; the caller commits the index transaction.

        ``provenance`` (e.g. stage 1's record of how it drew the sketch) goes into the PNG's metadata.
        """
        digest = content_hash(sketch)
        existing = self.index.by_hash(digest)
        if existing is not None:
            return Added(existing, True)
        entry_id = digest[:ID_LENGTH]
        relative = f"sketches/{entry_id[:2]}/{entry_id}.png"
        record = {"prompt": meta.prompt, "seed": meta.seed, "source": meta.source} | (provenance or {})
        save_png(sketch, self.root / relative, record | {"library_id": entry_id})
        entry = Entry(entry_id, digest, meta, sketch.width, sketch.height, relative, time.time())
        self.index.insert(entry, thumbnail_png(sketch))
        return Added(entry, False)

