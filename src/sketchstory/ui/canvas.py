"""The sketch canvas: what the drawing editor shows for a panel, and what a drawing becomes.

The editor draws on a canvas of about 512 px in the story's aspect ratio, whatever the render
size (a 64 x 64 canvas is too small to draw on); stage 2 scales the sketch to the render size.
The panel's sketch is shown as a transparent ink layer over white paper, so the eraser removes
its lines; what comes back is the flattened picture, cleaned into black lines on white.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sketchstory.sketches import canny_condition, load_image, normalize_sketch
from sketchstory.story import Settings

CANVAS_LONG_SIDE = 512
# A drawing whose darkest pixel is lighter than this is an empty page: the panel loses its sketch.
BLANK_LEVEL = 250


def canvas_size(settings: Settings) -> tuple[int, int]:
    scale = CANVAS_LONG_SIDE / max(settings.width, settings.height)
    return max(8, round(settings.width * scale)), max(8, round(settings.height * scale))


def page(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, "white")


def ink_layer(sketch: Image.Image) -> Image.Image:
    """Black ink whose opacity is the sketch's darkness, on a transparent layer."""
    alpha = Image.eval(sketch.convert("L"), lambda v: 255 - v)
    layer = Image.new("RGBA", sketch.size, (0, 0, 0, 0))
    layer.putalpha(alpha)
    return layer


def editor_value(sketch_file: Path | None, size: tuple[int, int]) -> dict:
    """The editor's value for a panel: white paper, plus the sketch as an erasable ink layer.

    ``composite`` is left empty on purpose: the editor echoes a value it was given with an empty
    composite, and :func:`drawing_to_sketch`'s caller ignores those echoes.
    """
    layers = [] if sketch_file is None else [ink_layer(normalize_sketch(load_image(sketch_file), size))]
    return {"background": page(size), "layers": layers, "composite": None}


def is_blank(picture: Image.Image) -> bool:
    return bool(np.asarray(picture.convert("L")).min() >= BLANK_LEVEL)


def drawing_to_sketch(composite: Image.Image, size: tuple[int, int]) -> Image.Image | None:
    """The editor's flattened picture as a clean sketch at ``size``; None for an empty page.

    Raises ``SketchError`` for a picture with marks but no usable lines.
    """
    return None if is_blank(composite) else normalize_sketch(composite, size)


def same_sketch(a: Image.Image | None, b: Image.Image | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.size == b.size and np.array_equal(np.asarray(a.convert("L")), np.asarray(b.convert("L")))


def canny_preview(sketch_file: Path, settings: Settings) -> Image.Image:
    """Exactly the Canny condition stage 2 will compute from this sketch (see pipeline.conditions)."""
    sketch = normalize_sketch(load_image(sketch_file), (settings.width, settings.height))
    return canny_condition(sketch, settings.canny_low, settings.canny_high)


def placeholder(size: tuple[int, int], text: str) -> Image.Image:
    """A grey card with a short note, for panels that have nothing to show."""
    card = Image.new("RGB", size, (236, 236, 236))
    font = ImageFont.load_default(size=max(10, size[1] // 8))
    ImageDraw.Draw(card).text((size[0] // 2, size[1] // 2), text, fill=(90, 90, 90), font=font, anchor="mm")
    return card


def enlarged(image: Image.Image, side: int = 256) -> Image.Image:
    """A small render scaled up with square pixels, for display (the files keep their real size)."""
    scale = max(1, side // max(image.size))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
