"""Consistency of the unspoken attributes across a story's panels, read back from the pixels.

For every panel and every hidden part (the wizard's cape, the cat's scarf...), the part's colour
is the per-channel median of the generated image inside the part's mask (known from the world's
drawing of that panel's sketch), converted to CIELAB. A panel is consistent when each hidden part
lies within ``threshold`` (CIE76 Delta E) of the same part in panel 0. The score is the share of
panels 1..n-1 that are consistent: 1.0 means every panel kept panel 0's colours.

The default threshold, 20, is under half the smallest distance between two colours of the
world's palette (about 43, blue vs purple), so two different palette colours never match, while
a blurred or slightly shifted rendering of the same colour still does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_THRESHOLD = 20.0
# Fewer pixels than this make a median meaningless; the world keeps hidden parts well above it.
MIN_PIXELS = 4


def part_colour(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The CIELAB colour (L in 0..100) of ``image`` (HxWx3 uint8 RGB) inside boolean ``mask``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {image.shape} and dtype {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    if int(mask.sum()) < MIN_PIXELS:
        raise ValueError(f"the part covers {int(mask.sum())} pixels; at least {MIN_PIXELS} are needed")
    rgb = np.median(image[mask.astype(bool)], axis=0).astype(np.float32) / 255.0
    return cv2.cvtColor(rgb[None, None], cv2.COLOR_RGB2Lab)[0, 0]


@dataclass(frozen=True)
class Consistency:
    """``distances[i][part]``: Delta E between panel i+1's and panel 0's colour of ``part``."""

    score: float
    consistent: tuple[bool, ...]  # per panel 1..n-1
    distances: tuple[dict[str, float], ...]


def hidden_consistency(
    images: Sequence[np.ndarray],
    masks: Sequence[Mapping[str, np.ndarray]],
    threshold: float = DEFAULT_THRESHOLD,
) -> Consistency:
    """Share of panels 1..n-1 whose hidden parts all match panel 0's colours (see module doc).

    ``masks[i]`` maps each hidden part to its boolean mask in panel i (e.g. ``Sample.hidden_masks``);
    every panel must name the same parts.
    """
    if len(images) != len(masks):
        raise ValueError(f"got {len(images)} images but {len(masks)} mask sets")
    if len(images) < 2:
        raise ValueError("consistency needs at least two panels")
    parts = set(masks[0])
    if not parts:
        raise ValueError("panel 0 names no hidden parts")
    for i, m in enumerate(masks):
        if set(m) != parts:
            raise ValueError(f"panel {i} has parts {sorted(m)}, panel 0 has {sorted(parts)}")
    reference = {part: part_colour(images[0], masks[0][part]) for part in parts}
    distances = tuple(
        {part: float(np.linalg.norm(part_colour(img, m[part]) - reference[part])) for part in sorted(parts)}
        for img, m in zip(images[1:], masks[1:], strict=True)
    )
    consistent = tuple(all(d <= threshold for d in ds.values()) for ds in distances)
    return Consistency(sum(consistent) / len(consistent), consistent, distances)
