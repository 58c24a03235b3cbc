"""Import a folder of user drawings into a library, each normalised to a clean sketch.

Every picture file under the folder is tried; one that cannot be used (corrupt, not a picture,
blank) is reported with the reason and skipped, so one bad scan does not stop a hundred good ones.
A drawing's prompt is its file name in words (``red_dragon-2.png`` -> "red dragon 2") and its
category is its subfolder, unless given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sketchstory.library.index import Entry, LibraryError, Meta
from sketchstory.library.store import Library
from sketchstory.sketches import SketchError, load_image


@dataclass
class ImportReport:
    added: list[Entry] = field(default_factory=list)
    duplicates: list[tuple[Path, Entry]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def picture_files(folder: Path) -> list[Path]:
    """Files under ``folder`` whose suffix names a format Pillow reads, hidden ones left out, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LibraryError(f"{folder} is not a folder: pass the folder that holds your drawings")
    suffixes = set(Image.registered_extensions())
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def prompt_from_name(path: Path) -> str:
    return " ".join(re.split(r"[\W_]+", path.stem)).strip() or path.stem


def import_folder(library: Library, folder: Path, *, tags: tuple[str, ...] = (), category: str | None = None,
                  on_file: Callable[[Path], None] | None = None) -> ImportReport:
    """Add every usable drawing under ``folder``; each one is committed as soon as it is stored."""
    folder = Path(folder)
    report = ImportReport()
    for path in picture_files(folder):
        try:
            sketch = library.normalise(load_image(path))
        except SketchError as error:
            report.failed.append((path, str(error)))
        else:
            sub = path.parent.relative_to(folder)
            meta = Meta("user", prompt_from_name(path), tags, category=category or (sub.as_posix() if sub.parts else None),
                        source=path.relative_to(folder).as_posix())
            with library.index.db:
                added = library.add(sketch, meta)
            if added.duplicate:
                report.duplicates.append((path, added.entry))
            else:
                report.added.append(added.entry)
        if on_file is not None:
            on_file(path)
    return report
