"""Per-panel inputs of stage 2: the full prompt, the seed, and the sketch turned into conditions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sketchstory.provenance import file_hash
from sketchstory.sketches import SketchError, canny_condition, load_image, normalize_sketch, sketch_foreground_mask
from sketchstory.story import LIBRARY_PREFIX, Story, StoryError, resolve_sketch


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


def prepare_inputs(story: Story, story_dir: Path, vae_scale: int, library: Path | None = None) -> list[PanelInputs]:
    """Load and condition every panel's sketch; report all unusable sketches at once."""
    s = story.settings
    size, latent = (s.width, s.height), (s.width // vae_scale, s.height // vae_scale)
    out, problems = [], []
    for n, panel in enumerate(story.panels):
        sketch = canny = mask = digest = None
        if panel.sketch is not None:
            try:
                path = sketch_file(story_dir, panel.sketch, library)
                digest = file_hash(path)
                sketch = normalize_sketch(load_image(path), size)
                canny = canny_condition(sketch, s.canny_low, s.canny_high)
                mask = sketch_foreground_mask(sketch, latent)
            except (SketchError, ValueError, OSError) as e:
                problems.append(f"panels[{n}].sketch: {e}")
        out.append(PanelInputs(story.full_prompt(n), story.panel_seed(n), digest, sketch, canny, mask))
    if problems:
        raise StoryError(problems)
    return out
