"""Line extraction for stage 1: a generated "line drawing" -> clean black lines on white ("L").

Text-to-image models asked for a line drawing still add grey shading, colour fills, tinted or
uneven paper and noise. Both extractors here work on the paper-relative lightness from
:func:`sketchstory.sketches.ink_darkness` (alpha, inversion and paper tint already handled) and
keep what is thin and dark, not what is merely dark:

- ``"xdog"`` (default): eXtended Difference of Gaussians (Winnemöller et al. 2012), thresholded.
- ``"adaptive"``: Gaussian adaptive threshold after a light blur.

XDoG is the default because it was as good or better at every noise level on held-out synthetic
drawings and degrades least as noise grows; docs/lineart.md has the measurement. The adaptive
threshold is the choice for fine hatching, which XDoG's blur averages away. Parameters are
set for a picture whose long side is 512 px and scale with the picture, since generated line
widths do. No thinning: stage 2 reads Canny edges, which trace both borders of a stroke whatever
its width, so a skeleton would add nothing and drop the stroke weight the user sees.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from PIL import Image

from sketchstory.sketches import SketchError, ink_darkness, remove_specks, speck_area

Method = Literal["xdog", "adaptive"]
METHODS: tuple[Method, ...] = ("xdog", "adaptive")
DEFAULT_METHOD: Method = "xdog"

# The parameters below were tuned at this long side (docs/lineart.md).
REFERENCE_SIDE = 512


def extract_lines(picture: Image.Image, method: Method = DEFAULT_METHOD) -> Image.Image:
    """Black strokes on white, mode "L", same size as ``picture``; blank if it holds no lines."""
    if method not in METHODS:
        raise SketchError(f"unknown line extraction method {method!r}; use one of {', '.join(METHODS)}")
    lightness = 1.0 - np.clip(ink_darkness(picture), 0.0, 1.0)
    ink = xdog_ink(lightness) if method == "xdog" else adaptive_ink(lightness)
    ink = remove_specks(ink, speck_area(ink.shape))
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), mode="L")


def xdog_ink(lightness: np.ndarray, *, sigma: float | None = None, p: float = 20.0, epsilon: float = 0.6) -> np.ndarray:
    """XDoG strokes of a lightness image (paper 1.0, ink 0.0), as a boolean mask.

    S = (1 + p) G_sigma - p G_{1.6 sigma} sharpens edges by p; the paper's soft tanh ramp is
    thresholded anyway, so only ``epsilon`` remains: ink where S < epsilon. ``sigma`` defaults to
    3 px at a 512 px long side.
    """
    sigma = 3.0 * _scale(lightness) if sigma is None else sigma
    image = lightness.astype(np.float32)
    fine = cv2.GaussianBlur(image, (0, 0), sigma)
    coarse = cv2.GaussianBlur(image, (0, 0), 1.6 * sigma)
    return (1.0 + p) * fine - p * coarse < epsilon


def adaptive_ink(
    lightness: np.ndarray, *, blur: float | None = None, block: int | None = None, offset: float = 15.0
) -> np.ndarray:
    """Pixels darker than their Gaussian-weighted neighbourhood by ``offset`` grey levels (of 255).

    The blur (1 px at 512) keeps paper noise from crossing the offset; ``block`` (71 px at 512,
    odd) must be wider than the thickest stroke, or strokes come out hollow.
    """
    scale = _scale(lightness)
    blur = 1.0 * scale if blur is None else blur
    block = (max(3, round(71 * scale)) | 1) if block is None else block
    gray: np.ndarray = np.clip(np.rint(lightness * 255.0), 0, 255).astype(np.uint8)
    gray = cv2.GaussianBlur(gray, (0, 0), blur)
    binary = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, offset)
    return binary == 0


def _scale(image: np.ndarray) -> float:
    return max(image.shape) / REFERENCE_SIDE
