"""Per-panel inputs of stage 2: the full prompt, the seed, and the sketch turned into conditions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sketchstory.provenance import file_hash
from sketchstory.sketches import SketchError, canny_condition, load_image, normalize_sketch, sketch_foreground_mask
from sketchstory.story import LIBRARY_PREFIX, Story, StoryError, resolve_sketch

Sketch = tuple[str, Image.Image]  # (hash of the file, the normalised sketch)
Mask = tuple[str, Image.Image]  # (hash of the file, a character's region mask in "L")
Picture = tuple[str, Image.Image]  # (hash of the file, a character's reference picture)


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


def read_sketch(story_dir: Path, ref: str, size: tuple[int, int], library: Path | None = None) -> Sketch:
    """(hash of the file, the normalised sketch) of a panel's sketch reference; ``SketchError`` if unusable."""
    path = sketch_file(story_dir, ref, library)
    sketch = normalize_sketch(load_image(path), size)  # first: it explains unreadable files best
    return file_hash(path), sketch


def read_sketches(story: Story, story_dir: Path, library: Path | None = None) -> list[Sketch | None]:
    """Every panel's sketch (None where it has none), read before any model loads, so that ``check``
    and ``generate`` report every unusable sketch at once, in one ``StoryError``."""
    size = (story.settings.width, story.settings.height)
    out, problems = [], []
    for n, panel in enumerate(story.panels):
        try:
            out.append(None if panel.sketch is None else read_sketch(story_dir, panel.sketch, size, library))
        except (SketchError, ValueError, OSError) as e:
            problems.append(f"panels[{n}].sketch: {e}")
    if problems:
        raise StoryError(problems)
    return out


def read_picture(story_dir: Path, ref: str) -> Picture:
    """(hash of the file, the picture) of a file the story names inside its folder: a region mask or a
    reference picture; ``ValueError`` or ``SketchError`` when it is missing, outside or unreadable."""
    path = resolve_sketch(story_dir, ref)
    if not path.is_file():
        raise ValueError(f"file not found: {ref}")
    return file_hash(path), load_image(path)


def read_masks(story: Story, story_dir: Path) -> dict[str, Mask]:
    """Every region mask the panels name, by its reference; ``StoryError`` lists every unusable one."""
    out: dict[str, Mask] = {}
    problems = []
    for i, panel in enumerate(story.panels):
        for j, placement in enumerate(panel.characters or ()):
            ref = placement.mask
            if ref is None or ref in out:
                continue
            where = f"panels[{i}].characters[{j}].mask"
            try:
                digest, picture = read_picture(story_dir, ref)
            except (SketchError, ValueError, OSError) as e:
                problems.append(f"{where}: {e}")
                continue
            picture = picture.convert("L")
            if not (np.asarray(picture) > 127).any():
                problems.append(f"{where}: {ref} has no light pixels: paint the character's region white on black")
                continue
            out[ref] = (digest, picture)
    if problems:
        raise StoryError(problems)
    return out


def read_references(story: Story, story_dir: Path) -> dict[str, Picture]:
    """Every character's reference picture, by character name; ``StoryError`` lists every unusable one."""
    out, problems = {}, []
    for i, character in enumerate(story.characters):
        if character.reference is not None:
            try:
                out[character.name] = read_picture(story_dir, character.reference)
            except (SketchError, ValueError, OSError) as e:
                problems.append(f"characters[{i}].reference: {e}")
    if problems:
        raise StoryError(problems)
    return out


def prepare_inputs(story: Story, sketches: list[Sketch | None], vae_scale: int) -> list[PanelInputs]:
    """Every panel's stage-2 inputs, from its sketch as :func:`read_sketches` read it; a sketch file that
    several panels use gets its conditions computed once."""
    s = story.settings
    latent = (s.width // vae_scale, s.height // vae_scale)
    made: dict[str, tuple[Image.Image, np.ndarray]] = {}
    out = []
    for n, read in enumerate(sketches):
        digest, sketch = read or (None, None)
        canny = mask = None
        if digest is not None and sketch is not None:
            if digest not in made:
                made[digest] = (canny_condition(sketch, s.canny_low, s.canny_high), sketch_foreground_mask(sketch, latent))
            canny, mask = made[digest]
        out.append(PanelInputs(story.full_prompt(n), story.panel_seed(n), digest, sketch, canny, mask))
    return out
