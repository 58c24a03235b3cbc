"""Per-panel inputs of stage 2: the full prompt, the seed, and the sketch turned into conditions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from sketchstory.provenance import file_hash
from sketchstory.sketches import SketchError, canny_condition, load_image, normalize_sketch, sketch_foreground_mask
from sketchstory.story import LIBRARY_PREFIX, Panel, Story, StoryError, resolve_sketch

T = TypeVar("T")


@dataclass(frozen=True)
class PanelInputs:
    prompt: str
    seed: int
    sketch_hash: str | None
    sketch: Image.Image | None  # normalised: black lines on white, at the story's size
    canny: Image.Image | None  # the ControlNet condition
    mask: np.ndarray | None  # subject region at latent resolution (bool), for MAGA's subject mask


def sketch_file(story_dir: Path, ref: str, library: Path | None = None) -> Path:
    """The file behind a panel's sketch reference: a path in the story folder, or ``library:ID``."""
    if ref.startswith(LIBRARY_PREFIX):
        from sketchstory.library.resolve import resolve

        return resolve(ref, library)
    return resolve_sketch(story_dir, ref)


def read_sketch(story_dir: Path, ref: str, size: tuple[int, int], library: Path | None = None) -> tuple[str, Image.Image]:
    """(hash of the file, the normalised sketch) of a panel's sketch reference; ``SketchError`` if unusable."""
    path = sketch_file(story_dir, ref, library)
    sketch = normalize_sketch(load_image(path), size)  # first: it explains unreadable files best
    return file_hash(path), sketch


def _each_panel(story: Story, make: Callable[[int, Panel], T]) -> list[T]:
    """``make`` for every panel, raising one ``StoryError`` that lists every panel whose sketch failed."""
    out, problems = [], []
    for n, panel in enumerate(story.panels):
        try:
            out.append(make(n, panel))
        except (SketchError, ValueError, OSError) as e:
            problems.append(f"panels[{n}].sketch: {e}")
    if problems:
        raise StoryError(problems)
    return out


def check_sketches_usable(story: Story, story_dir: Path, library: Path | None = None) -> None:
    """Raise ``StoryError`` for every sketch that stage 2 could not use (no model needed)."""
    size = (story.settings.width, story.settings.height)

    def read(n: int, panel: Panel) -> None:
        if panel.sketch is not None:
            read_sketch(story_dir, panel.sketch, size, library)

    _each_panel(story, read)


def prepare_inputs(story: Story, story_dir: Path, vae_scale: int, library: Path | None = None) -> list[PanelInputs]:
    """Load and condition every panel's sketch; report all unusable sketches at once."""
    s = story.settings
    size, latent = (s.width, s.height), (s.width // vae_scale, s.height // vae_scale)

    def make(n: int, panel: Panel) -> PanelInputs:
        sketch = canny = mask = digest = None
        if panel.sketch is not None:
            digest, sketch = read_sketch(story_dir, panel.sketch, size, library)
            canny = canny_condition(sketch, s.canny_low, s.canny_high)
            mask = sketch_foreground_mask(sketch, latent)
        return PanelInputs(story.full_prompt(n), story.panel_seed(n), digest, sketch, canny, mask)

    return _each_panel(story, make)
