"""Where a panel's sketch can come from besides the canvas: stage-1 candidates and the sketch library.

Either way the page copies the chosen file into the work folder (see ``Workspace.store_bytes``),
so the story stays self-contained and the sketch can be edited like a drawn one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sketchstory.library.index import LibraryError
from sketchstory.library.resolve import library_path
from sketchstory.library.store import Library
from sketchstory.pipeline.stage1 import Candidate, SketchOptions, candidate_folder, sketch_story
from sketchstory.story import Story

LIBRARY_PAGE = 24  # sketches shown per search


def sketch_candidates(story: Story, index: int, folder: Path, model: str, count: int, seed: int | None,
                      device: str | None = None) -> list[Candidate]:
    """``count`` stage-1 sketches for panel ``index``, drawn from ``seed`` (None: the panel's own seed).

    A new folder under ``folder`` each time, so earlier candidates (maybe in use) are never overwritten.
    """
    if seed is not None:  # only for stage 1: the panel keeps its own seed for stage 2
        panels = list(story.panels)
        panels[index] = panels[index].model_copy(update={"seed": seed})
        story = story.with_panels(panels)
    options = SketchOptions(candidates=count, progress=False, device=device)
    return sketch_story(story, {index: candidate_folder(folder, index)}, model, options)[index]


@dataclass(frozen=True)
class LibrarySketch:
    id: str
    label: str  # story / scene #candidate, or the category
    prompt: str
    path: Path


def search_library(library: Path | None, text: str, limit: int = LIBRARY_PAGE) -> list[LibrarySketch]:
    """The best matches for ``text`` (all sketches, in library order, when it is empty).

    ``library`` None is the default library (``$SKETCHSTORY_LIBRARY`` or the user's data folder);
    ``LibraryError`` says how to make one when there is none.
    """
    with Library.open(library_path(library)) as lib:
        entries = ([hit.entry for hit in lib.index.search(text, limit=limit)] if text.strip()
                   else lib.index.entries(limit=limit))
        found = []
        for entry in entries:
            try:
                found.append(LibrarySketch(entry.id, entry.label, entry.meta.prompt, lib.path(entry)))
            except LibraryError:
                continue  # listed but its file is gone: nothing to show
        return found
