"""Story-level editing, shared by the CLI (``sketchstory story ...``) and the web UI.

Every function takes a story and returns a new one (stories are frozen); the caller saves it with
:func:`sketchstory.story.save_story`. Functions that change a sketch write a *new* file inside the
story's folder and point the panel at it, so the user's original and every earlier version stay
on disk. Panel indices are 0-based, as in ``generate --only``.

Reordering panels would change the seed of every panel that has none (the default seed depends
on the position), and so its look: every panel operation pins the seeds first.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from itertools import chain, count
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sketchstory import editing
from sketchstory.atomic import atomic_write_bytes
from sketchstory.provenance import file_hash, save_png
from sketchstory.sketches import load_image, normalize_sketch
from sketchstory.story import LIBRARY_PREFIX, Panel, Story, StoryError, resolve_sketch

SKETCH_DIR = "sketches"  # where imported and copied-in sketches go, inside the story's folder
CANDIDATE_FILE = re.compile(r"cand_(\d+)\.png")
_EDIT_SUFFIX = re.compile(r"_edit\d+$")

# Named edits for callers that pass an operation by name (the CLI, the web UI's JSON requests).
EDITS: dict[str, Callable[..., Image.Image]] = {
    "flip": editing.flip,
    "move": editing.move_and_scale,
    "crop": editing.crop_and_refit,
    "erase": editing.erase_box,
    "erase_mask": editing.erase_mask,
    "thickness": editing.adjust_thickness,
    "strokes": editing.paste_strokes,
}


# --- panels -------------------------------------------------------------------------------------


def check_index(story: Story, index: int, *, allow_end: bool = False) -> int:
    """``index`` if the story has that panel (or, with ``allow_end``, it is one past the last)."""
    last = len(story.panels) if allow_end else len(story.panels) - 1
    if not isinstance(index, int) or not 0 <= index <= last:
        raise StoryError([f"panel {index}: no such panel; the story has panels 0..{len(story.panels) - 1}"
                          + (f" (insert at 0..{last})" if allow_end else "")])
    return index


def pin_seeds(story: Story) -> Story:
    """Give every panel without a seed the one it renders with now, so moving it keeps its look."""
    panels = [p if p.seed is not None else p.model_copy(update={"seed": story.panel_seed(i)})
              for i, p in enumerate(story.panels)]
    return story.with_panels(panels)


def insert_panel(story: Story, index: int, panel: Panel) -> Story:
    """Insert ``panel`` before panel ``index`` (``len(panels)`` appends); it gets an unused seed if it has none."""
    check_index(story, index, allow_end=True)
    story = pin_seeds(story)
    if panel.seed is None:
        used = {p.seed for p in story.panels}  # all pinned
        seed = (max(s for s in used if s is not None) + 1) % 2**63
        while seed in used:
            seed = (seed + 1) % 2**63
        panel = panel.model_copy(update={"seed": seed})
    panels = list(story.panels)
    panels.insert(index, panel)
    return story.with_panels(panels)


def delete_panel(story: Story, index: int) -> Story:
    """Remove a panel (its sketch file stays on disk); the last remaining panel cannot go."""
    check_index(story, index)
    if len(story.panels) == 1:
        raise StoryError([(f"panel {index}: cannot delete the story's only panel (a story needs at least one); "
                          "insert another panel first")])
    story = pin_seeds(story)
    return story.with_panels(story.panels[:index] + story.panels[index + 1 :])


def move_panel(story: Story, source: int, target: int) -> Story:
    """Move panel ``source`` so that it ends up at position ``target``, with its sketch and seed."""
    check_index(story, source)
    check_index(story, target)
    order = list(range(len(story.panels)))
    order.insert(target, order.pop(source))
    return reorder_panels(story, order)


def reorder_panels(story: Story, order: Sequence[int]) -> Story:
    """Panels in the given order: ``order[i]`` is the old index of the new panel ``i``."""
    n = len(story.panels)
    if sorted(order) != list(range(n)):
        raise StoryError([f"order {list(order)}: give each panel index 0..{n - 1} exactly once"])
    story = pin_seeds(story)
    return story.with_panels([story.panels[i] for i in order])


# --- sketches -----------------------------------------------------------------------------------


def sketch_file(story: Story, story_dir: Path, index: int) -> Path:
    """The file of panel ``index``'s sketch; errors say what to do when it has none or is not local."""
    check_index(story, index)
    ref = story.panels[index].sketch
    if ref is None:
        raise StoryError([(f"panels[{index}]: the panel has no sketch; import one (`sketchstory story import-sketch`) "
                          "or generate candidates (`sketchstory sketch`)")])
    if ref.startswith(LIBRARY_PREFIX):
        raise StoryError([(f"panels[{index}].sketch: {ref} is a sketch-library reference; import the library "
                          "sketch into the story to edit it")])
    try:
        path = resolve_sketch(story_dir, ref)
    except ValueError as e:
        raise StoryError([f"panels[{index}].sketch: {e}"]) from None
    if not path.is_file():
        raise StoryError([f"panels[{index}].sketch: file not found: {ref}"])
    return path


def set_sketch(story: Story, story_dir: Path, index: int, path: Path) -> Story:
    """Point the panel at an existing sketch file; one outside the story's folder is copied in first."""
    check_index(story, index)
    path, root = Path(path).resolve(), Path(story_dir).resolve()
    load_image(path)  # refuse missing or corrupt files before the story refers to them
    if not path.is_relative_to(root):
        stem = f"{path.parent.name}_{path.stem}" if CANDIDATE_FILE.fullmatch(path.name) else path.stem
        target = free_path(root / SKETCH_DIR, stem, path.suffix.lower() or ".png")
        path = atomic_write_bytes(target, path.read_bytes())  # bytes, so its metadata travels with it
    ref = path.relative_to(root).as_posix()
    panels = list(story.panels)
    panels[index] = panels[index].model_copy(update={"sketch": ref})
    return story.with_panels(panels)


def candidates_of(story: Story, story_dir: Path, index: int) -> dict[int, Path]:
    """Number -> file of the stage-1 candidates beside the panel's current sketch (empty if none)."""
    ref = story.panels[check_index(story, index)].sketch
    if ref is None or ref.startswith(LIBRARY_PREFIX):
        return {}
    try:
        folder = resolve_sketch(story_dir, ref).parent
    except ValueError:  # a path leaving the story's folder: nothing of the story's beside it
        return {}
    return dict(sorted((int(m[1]), p) for p in folder.glob("cand_*.png") if (m := CANDIDATE_FILE.fullmatch(p.name))))


def choose_candidate(story: Story, story_dir: Path, index: int, candidate: int | Path) -> Story:
    """Use candidate number ``candidate`` of the panel's stage-1 candidates, or the given file."""
    if isinstance(candidate, Path):
        return set_sketch(story, story_dir, index, candidate)
    options = candidates_of(story, story_dir, index)
    if not options:
        raise StoryError([(f"panels[{index}]: its sketch is not a stage-1 candidate, so there is nothing to choose "
                          "by number; give the candidate's file instead (e.g. candidates/panel_00/cand_01.png)")])
    if candidate not in options:
        raise StoryError([f"panels[{index}]: no candidate {candidate}; it has {', '.join(map(str, sorted(options)))}"])
    return set_sketch(story, story_dir, index, options[candidate])


def import_sketch(story: Story, story_dir: Path, index: int, image: Path) -> Story:
    """Make any drawing (photo, scan, transparent or dark PNG) the panel's sketch, at the story's size.

    Unreadable and blank pictures raise ``SketchError`` saying so; nothing is written then.
    """
    check_index(story, index)
    image = Path(image)
    size = (story.settings.width, story.settings.height)
    sketch = normalize_sketch(load_image(image), size)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", image.stem).strip("-") or "sketch"
    target = free_path(Path(story_dir) / SKETCH_DIR, stem, ".png")
    save_png(sketch, target, {"imported": image.name, "source_hash": file_hash(image), "size": list(size)})
    return set_sketch(story, story_dir, index, target)


def edit_sketch(story: Story, story_dir: Path, index: int, op: str, **params: Any) -> Story:
    """Apply an edit from :data:`EDITS` to the panel's sketch, saved as a new file beside it.

    E.g. ``edit_sketch(story, folder, 0, "flip", axis="horizontal")``; the new file is named
    ``<original>_editN.png`` and records the edit, its parameters and its source.
    """
    if op not in EDITS:
        raise ValueError(f"unknown edit {op!r}; use one of {', '.join(EDITS)}")
    source = sketch_file(story, story_dir, index)
    try:
        inspect.signature(EDITS[op]).bind(None, **params)
    except TypeError as e:
        raise ValueError(f"edit {op!r}: {e}; it takes {inspect.signature(EDITS[op])}") from None
    result = EDITS[op](load_image(source), **params)
    base = _EDIT_SUFFIX.sub("", source.stem)
    target = free_path(source.parent, f"{base}_edit", ".png", numbered=True)
    meta = {"edit": op, "params": {k: _jsonable(v) for k, v in params.items()},
            "source": story.panels[index].sketch, "source_hash": file_hash(source)}
    save_png(result, target, meta)
    return set_sketch(story, story_dir, index, target)


def free_path(folder: Path, stem: str, suffix: str, *, numbered: bool = False) -> Path:
    """A path in ``folder`` that does not exist yet: ``stem``, ``stem-2``, ... (numbered: ``stem1``, ``stem2``, ...)."""
    names = (f"{stem}{n}" for n in count(1)) if numbered else chain([stem], (f"{stem}-{n}" for n in count(2)))
    return next(path for name in names if not (path := folder / f"{name}{suffix}").exists())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return f"<array {'x'.join(map(str, value.shape))}>"
    if isinstance(value, Image.Image):
        return f"<image {value.size[0]}x{value.size[1]}>"
    if isinstance(value, tuple):
        return list(value)
    return value
