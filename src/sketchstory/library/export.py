"""Export a subset of a library as a library of its own: a folder, or a zip of one.

An export keeps ids, metadata and thumbnails, so stories that reference ``library:ID`` work with
the exported library too, and ``--library`` can point straight at the (unzipped) result. Exporting
into an existing library merges into it, skipping sketches it already holds.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sketchstory.atomic import atomic_path
from sketchstory.library.index import Entry, LibraryError
from sketchstory.library.store import Library


def export(source: Library, entries: Sequence[Entry], dest: Path) -> int:
    """Write ``entries`` of ``source`` to ``dest`` (a folder, or a file ending in .zip); returns how many were new."""
    dest = Path(dest)
    if not entries:
        raise LibraryError("nothing to export: the selection matches no sketch")
    if dest.suffix.lower() != ".zip":
        return _export_folder(source, entries, dest)
    if dest.exists():  # a file of the user's name is never replaced; a folder is merged only if it is a library
        raise LibraryError(f"{dest} exists: give the export a new file name (an existing zip is not replaced)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".export.") as tmp:
        folder = Path(tmp) / dest.stem
        added = _export_folder(source, entries, folder)
        with atomic_path(dest) as part, zipfile.ZipFile(part, "w") as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    # PNGs are already compressed; deflating them again only costs time.
                    method = zipfile.ZIP_STORED if path.suffix == ".png" else zipfile.ZIP_DEFLATED
                    archive.write(path, f"{dest.stem}/{path.relative_to(folder).as_posix()}", compress_type=method)
    return added


def _export_folder(source: Library, entries: Sequence[Entry], dest: Path) -> int:
    added = 0
    with Library.writer(dest, side=source.side) as out, out.index.db:
        for entry in entries:
            if out.index.by_hash(entry.hash) is not None:
                continue
            target = dest / entry.file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.path(entry), target)
            out.index.insert(entry, source.index.thumbnail(entry.id))
            added += 1
    return added
