"""Edits a user makes to a sketch in the CLI or the web UI.

Every operation takes a sketch (any mode; it is read as grey) and returns a new "L" image of the
same size, black lines on white, so that edits chain and the panel's size never drifts.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps

from sketchstory.sketches import SketchError, fit_to_frame, to_standard_mode

Box = tuple[int, int, int, int]  # (left, top, right, bottom), right and bottom exclusive, as in Pillow


# Limits of the edits: beyond them a sketch is gone (moved out, scaled to a dot) or the work explodes
# (a 1e6x scale allocates terabytes; a 100,000 px kernel never ends).
MIN_SCALE, MAX_SCALE = 1 / 16, 16.0
MAX_MOVE = 4096  # the largest story side
MAX_THICKEN = 64


def flip(sketch: Image.Image, axis: Literal["horizontal", "vertical"]) -> Image.Image:
    """Mirror left-right ("horizontal") or upside down ("vertical")."""
    gray = sketch.convert("L")
    if axis == "horizontal":
        return ImageOps.mirror(gray)
    if axis == "vertical":
        return ImageOps.flip(gray)
    raise SketchError(f"cannot flip along {axis!r}; use 'horizontal' or 'vertical'")


def move_and_scale(sketch: Image.Image, *, dx: int = 0, dy: int = 0, scale: float = 1.0) -> Image.Image:
    """Scale the drawing about its own centre, then move it by (dx, dy) pixels inside the frame.

    What leaves the frame is cut off; uncovered frame is white.
    """
    if not (np.isfinite(scale) and MIN_SCALE <= scale <= MAX_SCALE):
        raise SketchError(f"scale must be from {MIN_SCALE:g} to {MAX_SCALE:g}, got {scale:g}; 1.0 keeps the size")
    if max(abs(dx), abs(dy)) > MAX_MOVE:
        raise SketchError(f"a move of ({dx}, {dy}) pixels: move at most {MAX_MOVE} pixels each way")
    gray = np.asarray(sketch.convert("L"))
    height, width = gray.shape
    centre = _drawing_centre(gray)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = gray if (new_w, new_h) == (width, height) else cv2.resize(gray, (new_w, new_h), interpolation=interpolation)
    # Where the scaled picture's corner lands so that the drawing's centre stays put, plus the move.
    left = round(centre[0] * (1 - new_w / width)) + int(dx)
    top = round(centre[1] * (1 - new_h / height)) + int(dy)
    return Image.fromarray(_paste_on_white(scaled, (height, width), left, top), mode="L")


def crop_and_refit(sketch: Image.Image, box: Box) -> Image.Image:
    """Keep only ``box`` and scale it up to fill the frame, keeping its aspect ratio (white margins)."""
    left, top, right, bottom = _check_box(box, sketch.size)
    return fit_to_frame(sketch.convert("L").crop((left, top, right, bottom)), sketch.size)


def erase_box(sketch: Image.Image, box: Box) -> Image.Image:
    """Paint ``box`` white."""
    left, top, right, bottom = _check_box(box, sketch.size)
    gray = np.array(sketch.convert("L"))
    gray[top:bottom, left:right] = 255
    return Image.fromarray(gray, mode="L")


def erase_mask(sketch: Image.Image, mask: np.ndarray) -> Image.Image:
    """Paint white wherever the boolean (height, width) ``mask`` is true."""
    gray = np.array(sketch.convert("L"))
    if mask.shape != gray.shape:
        raise SketchError(
            f"the eraser mask is {mask.shape[1::-1]} (width, height) but the sketch is {sketch.size}; "
            "draw the mask on a canvas of the sketch's size"
        )
    gray[mask.astype(bool)] = 255
    return Image.fromarray(gray, mode="L")


def adjust_thickness(sketch: Image.Image, pixels: int) -> Image.Image:
    """Make every line ``pixels`` px thicker on each side (positive) or thinner (negative).

    Thinning never deletes a line: its one-pixel skeleton is kept, so a stroke thinner than the
    amount ends as a hairline rather than vanishing.
    """
    if not isinstance(pixels, int):
        raise SketchError(f"line thickness changes in whole pixels, got {pixels!r}")
    if abs(pixels) > MAX_THICKEN:
        raise SketchError(f"line thickness changes by {pixels} px: give -{MAX_THICKEN} to {MAX_THICKEN} px")
    gray = np.asarray(sketch.convert("L"))
    if pixels == 0:
        return Image.fromarray(gray.copy(), mode="L")
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1, 2 * abs(pixels) + 1))
    if pixels > 0:
        return Image.fromarray(cv2.erode(gray, disk), mode="L")  # min filter: dark lines grow
    thinner = cv2.dilate(gray, disk)  # max filter: dark lines shrink
    return Image.fromarray(np.where(_skeleton(gray < 128), gray, thinner), mode="L")


def paste_strokes(sketch: Image.Image, layer: Image.Image) -> Image.Image:
    """Apply a user's drawn RGBA stroke layer: dark strokes become black lines, light ones erase.

    Partial transparency (anti-aliased brush edges) blends in proportion.
    """
    if layer.size != sketch.size:
        raise SketchError(
            f"the stroke layer is {layer.size} but the sketch is {sketch.size} (width, height); "
            "draw on a canvas of the sketch's size"
        )
    layer = to_standard_mode(layer)
    if layer.mode != "RGBA":
        raise SketchError("the stroke layer has no transparency, so it would cover the whole sketch; send an RGBA layer")
    rgba = np.asarray(layer, dtype=np.float32) / 255.0
    alpha = rgba[:, :, 3]
    light = rgba[:, :, :3].mean(axis=2) >= 0.5
    gray = np.asarray(sketch.convert("L"), dtype=np.float32)
    target = np.where(light, 255.0, 0.0)
    blended = gray * (1.0 - alpha) + target * alpha
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), mode="L")


def _drawing_centre(gray: np.ndarray) -> tuple[float, float]:
    """Centre of the drawing's bounding box, or of the frame when there is no drawing."""
    rows, cols = np.nonzero(gray < 255)
    if rows.size == 0:
        return gray.shape[1] / 2, gray.shape[0] / 2
    return (cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2


def _paste_on_white(picture: np.ndarray, shape: tuple[int, int], left: int, top: int) -> np.ndarray:
    """``picture`` placed with its corner at (left, top) on a white page of ``shape``, clipped."""
    page = np.full(shape, 255, dtype=np.uint8)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(shape[0], top + picture.shape[0]), min(shape[1], left + picture.shape[1])
    if y0 < y1 and x0 < x1:
        page[y0:y1, x0:x1] = picture[y0 - top : y1 - top, x0 - left : x1 - left]
    return page


def _check_box(box: Box, size: tuple[int, int]) -> Box:
    left, top, right, bottom = (int(v) for v in box)
    width, height = size
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise SketchError(
            f"box {box} is empty or outside the {width}x{height} sketch; give (left, top, right, bottom) "
            "with left < right <= width and top < bottom <= height"
        )
    return left, top, right, bottom


def _skeleton(ink: np.ndarray) -> np.ndarray:
    """Morphological (Lantuéjoul) skeleton: what each erosion step leaves that an opening removes."""
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    remaining: np.ndarray = ink.astype(np.uint8)
    skeleton: np.ndarray = np.zeros_like(remaining)
    while remaining.any():
        eroded = cv2.erode(remaining, cross)
        skeleton |= remaining - cv2.dilate(eroded, cross)
        remaining = eroded
    return skeleton.astype(bool)
