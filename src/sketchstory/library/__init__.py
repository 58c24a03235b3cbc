"""The sketch library: SketchXL-style story and sundry groups of sketches, indexed and searchable.

A library is a folder of sketch PNGs plus an SQLite index (FTS5 search over prompts, tags,
categories, story and scene names; thumbnails; content hashes). Story panels reference a sketch
as ``library:ID``; :func:`resolve` finds its file. Building one with stage 1 is
:mod:`sketchstory.pipeline.library_build`'s work.
"""

from sketchstory.library.export import export
from sketchstory.library.importer import ImportReport, import_folder, picture_files
from sketchstory.library.index import Entry, Hit, Index, LibraryError, Meta
from sketchstory.library.prompts import PromptsFile, load_prompts
from sketchstory.library.query import Filters
from sketchstory.library.resolve import ENV_VAR, default_library, library_path, resolve
from sketchstory.library.store import Library

__all__ = [
    "ENV_VAR", "Entry", "Filters", "Hit", "ImportReport", "Index", "Library", "LibraryError", "Meta",
    "PromptsFile", "default_library", "export", "import_folder", "library_path", "load_prompts",
    "picture_files", "resolve",
]
