"""The sketch canvas: what the drawing editor shows for a panel, and what a drawing becomes.

The editor draws on a canvas of about 512 px in the story's aspect ratio, whatever the render
size (a 64 x 64 canvas is too small to draw on); stage 2 scales the sketch to the render size.
The panel's sketch is shown as a transparent ink layer over white paper, so the eraser removes
its lines; what comes back is the flattened picture. Only the pixels the user changed are taken
from it: the rest of the sketch stays exactly as shown (cleaning the whole picture again would
thicken and break a small sketch's grey lines on every stroke).
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sketchstory.sketches import SketchError, canny_condition, fit_to_frame, load_image, normalize_sketch
from sketchstory.story import Settings

CANVAS_LONG_SIDE = 512
# A drawing whose darkest pixel is lighter than this is an empty page.
BLANK_LEVEL = 250
# The browser composites the ink layer with rounding; a pixel that moved less than this was not drawn on.
DRAWN_LEVEL = 8
# Uploads are reduced to this long side before they are cleaned (a 6000 px photo would take minutes).
UPLOAD_LONG_SIDE = 2 * CANVAS_LONG_SIDE
# The largest file the server takes (said beside the canvas; the browser reduces bigger pictures first).
MAX_UPLOAD_MB = 25


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


def shown_sketch(sketch_file: Path, size: tuple[int, int]) -> Image.Image:
    """The panel's sketch as the canvas shows it: scaled to fit ``size``, its lines as they are."""
    return fit_to_frame(load_image(sketch_file), size).convert("L")


def editor_value(sketch_file: Path | None, size: tuple[int, int]) -> dict:
    """The editor's value for a panel: white paper, plus the sketch as an erasable ink layer.

    ``composite`` is left empty on purpose: the editor echoes a value it was given with an empty
    composite, and :func:`merge_drawing`'s caller ignores those echoes.
    """
    layers = [] if sketch_file is None else [ink_layer(shown_sketch(sketch_file, size))]
    return {"background": page(size), "layers": layers, "composite": None}


def is_blank(picture: Image.Image) -> bool:
    return bool(np.asarray(picture.convert("L")).min() >= BLANK_LEVEL)


def reduced(picture: Image.Image, long_side: int = UPLOAD_LONG_SIDE) -> Image.Image:
    """``picture`` no larger than ``long_side`` (a fast box reduction; small pictures are returned as is)."""
    if max(picture.size) <= long_side:
        return picture
    small = picture.copy()
    small.thumbnail((long_side, long_side), Image.Resampling.BOX, reducing_gap=2.0)
    return small


def picture_from_data_url(url: str) -> Image.Image:
    """The picture in a base64 ``data:`` URL (as the page's script sends it), reduced to UPLOAD_LONG_SIDE.

    ``SketchError`` if it is not one, is larger than MAX_UPLOAD_MB, or is no picture Pillow can read.
    """
    head, _, data = url.partition(",")
    if not (head.startswith("data:") and head.endswith(";base64")):
        raise SketchError("it did not arrive as a picture")
    if len(data) * 3 // 4 > MAX_UPLOAD_MB * 2**20:
        raise SketchError(f"it is larger than {MAX_UPLOAD_MB} MB")
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error as e:
        raise SketchError("it arrived damaged") from e
    with tempfile.TemporaryDirectory() as folder:  # load_image reads files: every format and check it has
        path = Path(folder) / "picture"
        path.write_bytes(raw)
        try:
            return reduced(load_image(path))
        except SketchError as e:  # its message names the temporary file
            raise SketchError(str(e).replace(str(path), "the file")) from e


def merge_drawing(composite: Image.Image, shown: Image.Image | None, size: tuple[int, int]) -> Image.Image | None:
    """The sketch after the user's edit: ``shown`` (what the canvas showed) with the pixels the user changed.

    None for an empty page.
    """
    if is_blank(composite):
        return None  # every line erased (leftover faint pixels of the merge below would otherwise count)
    drawn = np.asarray(reduced(composite).convert("L").resize(size), dtype=np.int16)
    base = np.full(drawn.shape, 255, np.int16) if shown is None else np.asarray(shown.convert("L"), dtype=np.int16)
    merged = np.where(np.abs(drawn - base) >= DRAWN_LEVEL, drawn, base).astype(np.uint8)
    return None if merged.min() >= BLANK_LEVEL else Image.fromarray(merged, mode="L")


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
