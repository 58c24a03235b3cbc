"""Draws one shape at a time into three aligned layers: the coloured image, the line sketch and a
part-label map.

Every shape is filled and outlined in the image, filled white and outlined black in the sketch
(so later shapes hide earlier lines exactly as they hide earlier colours), and filled with its
part label in the label map. Outlines get their own label so that part masks read back only the
flat interior colour. Drawing happens at ``supersample`` times the output size and is reduced
with area averaging, which gives anti-aliased 1-pixel lines at the output size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

Point = tuple[float, float]
RGB = tuple[int, int, int]

BACKGROUND = 0
OUTLINE = 255
_INK: RGB = (25, 25, 30)
# A pixel belongs to a part only when all its subpixels show the part: no ink or neighbour blended in.
_MASK_COVERAGE = 1.0


class Painter:
    """Three aligned canvases (image, sketch, labels) at ``size * supersample`` pixels."""

    def __init__(self, size: int, supersample: int = 4) -> None:
        if size < 16:
            raise ValueError(f"image size must be at least 16 pixels, got {size}")
        self.size = size
        self.ss = supersample
        side = size * supersample
        self.side = side
        self.image = np.full((side, side, 3), 255, np.uint8)
        self.sketch = np.full((side, side), 255, np.uint8)
        self.labels = np.full((side, side), BACKGROUND, np.uint8)
        self.thickness = max(1, round(supersample * 1.1))

    def _px(self, pts: Sequence[Point]) -> np.ndarray:
        """Canvas fractions (0..1) -> integer pixel coordinates of the supersampled canvas."""
        return np.round(np.asarray(pts, np.float64) * self.side).astype(np.int32).reshape(-1, 1, 2)

    def fill_rect(self, y0: float, y1: float, colour: RGB) -> None:
        """A full-width band (sky, ground) with no outline, part of the background."""
        a, b = round(y0 * self.side), round(y1 * self.side)
        self.image[a:b] = colour

    def polygon(self, pts: Sequence[Point], colour: RGB, label: int = BACKGROUND, outline: bool = True) -> None:
        px = self._px(pts)
        cv2.fillPoly(self.image, [px], colour, cv2.LINE_AA)
        cv2.fillPoly(self.sketch, [px], 255, cv2.LINE_AA)
        cv2.fillPoly(self.labels, [px], label, cv2.LINE_8)
        if outline:
            self._outline(lambda img, col, t, lt: cv2.polylines(img, [px], True, col, t, lt))

    def ellipse(
        self, centre: Point, axes: tuple[float, float], colour: RGB, label: int = BACKGROUND,
        angle: float = 0.0, outline: bool = True,
    ) -> None:
        c = (round(centre[0] * self.side), round(centre[1] * self.side))
        ax = (max(1, round(axes[0] * self.side)), max(1, round(axes[1] * self.side)))
        cv2.ellipse(self.image, c, ax, angle, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.ellipse(self.sketch, c, ax, angle, 0, 360, 255, -1, cv2.LINE_AA)
        cv2.ellipse(self.labels, c, ax, angle, 0, 360, label, -1, cv2.LINE_8)
        if outline:
            self._outline(lambda img, col, t, lt: cv2.ellipse(img, c, ax, angle, 0, 360, col, t, lt))

    def stick(self, pts: Sequence[Point], colour: RGB, width: float, label: int = BACKGROUND) -> None:
        """A thick open polyline (staff, tail, arm) outlined in ink: drawn as ink, then colour inside."""
        px = self._px(pts)
        w = max(1, round(width * self.side))
        t = self.thickness
        cv2.polylines(self.image, [px], False, _INK, w + 2 * t, cv2.LINE_AA)
        cv2.polylines(self.image, [px], False, colour, w, cv2.LINE_AA)
        cv2.polylines(self.sketch, [px], False, 0, w + 2 * t, cv2.LINE_AA)
        cv2.polylines(self.sketch, [px], False, 255, w, cv2.LINE_AA)
        cv2.polylines(self.labels, [px], False, OUTLINE, w + 2 * t + 2, cv2.LINE_8)
        cv2.polylines(self.labels, [px], False, label, max(1, w - 2), cv2.LINE_8)

    def line(self, pts: Sequence[Point], closed: bool = False) -> None:
        """A bare ink line (waves, visor slit, mouth) in image and sketch."""
        px = self._px(pts)
        self._outline(lambda img, col, t, lt: cv2.polylines(img, [px], closed, col, t, lt))

    def dot(self, centre: Point, radius: float, colour: RGB = _INK) -> None:
        """A small filled disc (eye, star) in ink or colour; in the sketch always ink."""
        c = (round(centre[0] * self.side), round(centre[1] * self.side))
        r = max(1, round(radius * self.side))
        cv2.circle(self.image, c, r, colour, -1, cv2.LINE_AA)
        cv2.circle(self.sketch, c, r, 0, -1, cv2.LINE_AA)
        cv2.circle(self.labels, c, r, OUTLINE, -1, cv2.LINE_8)

    def _outline(self, draw: Callable[[np.ndarray, RGB | int, int, int], object]) -> None:
        """Run one cv2 line call (canvas, colour, thickness, line type) on all three layers.

        Labels are drawn without anti-aliasing (blended values would be other parts' labels) and
        wider, covering the anti-aliased fringe, so part masks hold only unblended colour.
        """
        t = self.thickness
        draw(self.image, _INK, t, cv2.LINE_AA)
        draw(self.sketch, 0, t, cv2.LINE_AA)
        draw(self.labels, OUTLINE, t + 2, cv2.LINE_8)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The image (HxWx3 RGB uint8) and sketch (HxW uint8, dark lines on white) at output size."""
        shape = (self.size, self.size)
        image = cv2.resize(self.image, shape, interpolation=cv2.INTER_AREA)
        sketch = cv2.resize(self.sketch, shape, interpolation=cv2.INTER_AREA)
        return image, sketch

    def mask(self, labels: Sequence[int]) -> np.ndarray:
        """Output-size boolean mask of the pixels mostly covered by the interiors of ``labels``."""
        hit = np.isin(self.labels, np.asarray(labels, np.uint8)).astype(np.float32)
        cover = cv2.resize(hit, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return cover >= _MASK_COVERAGE

    def footprint(self, labels: Sequence[int]) -> np.ndarray:
        """Output-size boolean mask of any pixel touched by ``labels`` (interiors), for bounding boxes."""
        hit = np.isin(self.labels, np.asarray(labels, np.uint8)).astype(np.float32)
        return cv2.resize(hit, (self.size, self.size), interpolation=cv2.INTER_AREA) > 0
