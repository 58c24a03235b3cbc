"""The page's *Characters* tab, pure parts: the panel's sketch with each character's region drawn over
it, and a box read from two clicks on that picture or typed as four numbers.

The picture is the panel at ``PICTURE_LONG_SIDE`` px in the story's aspect ratio, so a click at
pixel (x, y) is the point (x / width, y / height) of the panel, the coordinates a story's boxes use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sketchstory.sketches import SketchError, fit_to_frame, load_image
from sketchstory.story import BOX_HELP, Placement, Settings, Story, StoryError

PICTURE_LONG_SIDE = 384
# One colour per character, in the story's order (repeats after six); readable on white.
COLOURS = ((220, 38, 38), (37, 99, 235), (22, 163, 74), (217, 119, 6), (147, 51, 234), (8, 145, 178))
Box = tuple[float, float, float, float]


def picture_size(settings: Settings) -> tuple[int, int]:
    scale = PICTURE_LONG_SIDE / max(settings.width, settings.height)
    return max(8, round(settings.width * scale)), max(8, round(settings.height * scale))


def colour_of(story: Story, name: str) -> tuple[int, int, int]:
    names = [c.name for c in story.characters]
    return COLOURS[names.index(name) % len(COLOURS)] if name in names else (90, 90, 90)


def placement_picture(story: Story, index: int, sketch: Path | None, root: Path,
                      corner: tuple[float, float] | None = None) -> Image.Image:
    """Panel ``index``'s sketch (faded, so the regions stand out) with each placed character's box or
    mask in its colour and name; ``corner``: the first corner of a box being drawn, as a cross."""
    size = picture_size(story.settings)
    paper = Image.new("RGB", size, "white")
    if sketch is not None:
        try:
            lines = fit_to_frame(load_image(sketch), size).convert("L")
            paper = Image.eval(lines, lambda v: 255 - (255 - v) // 2).convert("RGB")  # half-tone lines
        except SketchError:
            pass  # the panel note already says why the sketch cannot be used
    draw = ImageDraw.Draw(paper)
    font = ImageFont.load_default(size=14)
    for placement in story.placements(index):
        colour = colour_of(story, placement.name)
        if placement.box is not None:
            x0, y0, x1, y1 = _pixels(placement.box, size)
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=3)
            draw.text((x0 + 4, y0 + 2), placement.name, fill=colour, font=font)
        elif placement.mask is not None:
            paper = _tinted(paper, root / placement.mask, colour)
            draw = ImageDraw.Draw(paper)
            draw.text((4, 2), f"{placement.name} (mask)", fill=colour, font=font)
    if corner is not None:
        x, y = corner[0] * size[0], corner[1] * size[1]
        draw.line((x - 8, y, x + 8, y), fill=(0, 0, 0), width=2)
        draw.line((x, y - 8, x, y + 8), fill=(0, 0, 0), width=2)
    return paper


def _pixels(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = size
    return round(box[0] * w), round(box[1] * h), min(round(box[2] * w), w - 1), min(round(box[3] * h), h - 1)


def _tinted(paper: Image.Image, mask_file: Path, colour: tuple[int, int, int]) -> Image.Image:
    """``paper`` with the region of a mask picture washed in ``colour`` (an unreadable mask: unchanged)."""
    try:
        mask = np.asarray(load_image(mask_file).convert("L").resize(paper.size, Image.Resampling.NEAREST)) > 127
    except (SketchError, OSError):
        return paper
    pixels = np.asarray(paper, dtype=np.float32)
    pixels[mask] = 0.65 * pixels[mask] + 0.35 * np.asarray(colour, dtype=np.float32)
    return Image.fromarray(pixels.round().astype(np.uint8))


def click_point(xy: Sequence[int], settings: Settings) -> tuple[float, float]:
    """A click on the picture (pixels, as the browser reports it) as a point of the panel (0..1)."""
    w, h = picture_size(settings)
    return min(max(xy[0] / w, 0.0), 1.0), min(max(xy[1] / h, 0.0), 1.0)


def box_from_corners(a: tuple[float, float], b: tuple[float, float]) -> Box:
    """The box two opposite corners span, in either order; ``StoryError`` when it has no area."""
    box = (round(min(a[0], b[0]), 2), round(min(a[1], b[1]), 2), round(max(a[0], b[0]), 2), round(max(a[1], b[1]), 2))
    if box[2] - box[0] < 0.02 or box[3] - box[1] < 0.02:
        raise StoryError(["box: the two corners are (almost) on one line; click two opposite corners of the "
                          "character, e.g. top left, then bottom right"])
    return box


def parse_box(text: str) -> Box:
    """Four numbers typed as ``x0, y0, x1, y1`` (commas or spaces, brackets allowed)."""
    parts = text.replace("[", " ").replace("]", " ").replace(",", " ").split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise StoryError([f"box {text.strip()!r}: not four numbers; {BOX_HELP}"]) from None
    if len(numbers) != 4:
        raise StoryError([f"box {text.strip()!r}: {len(numbers)} numbers, not 4; {BOX_HELP}"])
    try:
        return Placement(name="box", box=tuple(numbers)).box  # type: ignore[arg-type,return-value]
    except ValueError as e:  # pydantic's ValidationError: the story format's own explanation
        raise StoryError([f"box: {e.errors()[0]['msg'].removeprefix('Value error, ')}"]) from None  # type: ignore[attr-defined]


def box_text(box: Box | None) -> str:
    return "" if box is None else ", ".join(f"{v:g}" for v in box)


def legend(story: Story, index: int) -> str:
    """One line per character of the panel: where it is, in words."""
    lines = []
    for p in story.placements(index):
        where = (f"box {box_text(p.box)}" if p.box is not None else f"mask `{p.mask}`" if p.mask is not None
                 else "no box: stands on the sketch's subject")
        lines.append(f"- **{p.name}**: {where}")
    listed = story.panels[index].characters is not None
    head = "In this panel:" if listed else "No one is listed, so the panel has the characters its prompt names:"
    return head + "\n" + "\n".join(lines) if lines else "No character is in this panel."
