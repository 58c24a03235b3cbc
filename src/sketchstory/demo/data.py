"""Training data from the toy world: images, sketches, Canny control images and captions.

The set is made of two-panel pages: samples ``2i`` and ``2i + 1`` show the same character (same
spoken and hidden colours) in two different scenes (see ``pages.py`` for how training uses them).
It is rendered once per (seed, count, size) and cached as ``.npz`` so that a resumed or repeated
training sees exactly the same samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from sketchstory.atomic import atomic_path
from sketchstory.demo.world import make_story
from sketchstory.models import SKETCH_PREFIX

# Stage 2 feeds the ControlNet the Canny edges of the sketch with these thresholds (white on black).
CANNY_LOW, CANNY_HIGH = 100, 200


def control_image(sketch: np.ndarray) -> np.ndarray:
    """The ControlNet condition of a sketch: its Canny edges as an HxWx3 uint8 RGB image."""
    if sketch.ndim != 2 or sketch.dtype != np.uint8:
        raise ValueError(f"expected an HxW uint8 sketch, got shape {sketch.shape} and dtype {sketch.dtype}")
    edges = cv2.Canny(sketch, CANNY_LOW, CANNY_HIGH)
    return np.repeat(edges[..., None], 3, axis=2)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """NxHxWx3 (or NxHxW grey) uint8 -> Nx3xHxW float in [-1, 1]."""
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@dataclass(frozen=True)
class WorldData:
    images: np.ndarray  # NxHxWx3 uint8; 2i and 2i+1 form a page (one character twice)
    sketches: np.ndarray  # NxHxW uint8
    boxes: np.ndarray  # Nx4 int: the character's x0, y0, x1, y1
    masks: np.ndarray  # NxHxW bool: the character's pixels
    captions: list[str]
    plain_captions: list[str]  # the same captions without the body colour ("a wizard walking ...")

    def __len__(self) -> int:
        return len(self.captions)

    def sketch_captions(self) -> list[str]:
        return [SKETCH_PREFIX + c for c in self.captions]

    def controls(self, index: np.ndarray) -> np.ndarray:
        return np.stack([control_image(self.sketches[i]) for i in index])


def render_world(count: int, size: int, seed: int) -> WorldData:
    """``count // 2`` two-panel world stories ``seed * count ...`` (disjoint across seeds), flattened."""
    count -= count % 2
    images = np.empty((count, size, size, 3), np.uint8)
    sketches = np.empty((count, size, size), np.uint8)
    masks = np.empty((count, size, size), bool)
    boxes = np.empty((count, 4), np.int64)
    captions, plain = [], []
    for page in tqdm(range(count // 2), desc="rendering the toy world", leave=False):
        for j, s in enumerate(make_story(seed * count + page, 2, size).panels):
            i = 2 * page + j
            images[i], sketches[i], masks[i], boxes[i] = s.image, s.sketch, s.masks["character"], s.bbox
            captions.append(s.caption)
            plain.append(s.scene.describe(colour=False))
    return WorldData(images, sketches, boxes, masks, captions, plain)


def load_or_render(path: Path, count: int, size: int, seed: int) -> WorldData:
    """The cached set at ``path`` if it was made with these settings, else a fresh one (then cached)."""
    key = json.dumps({"count": count, "size": size, "seed": seed, "format": 3})
    if path.exists():
        with np.load(path) as z:
            if str(z["key"]) == key:
                return WorldData(z["images"], z["sketches"], z["boxes"], z["masks"], json.loads(str(z["captions"])),
                                 json.loads(str(z["plain_captions"])))
    data = render_world(count, size, seed)
    with atomic_path(path) as tmp:
        np.savez(tmp, key=key, images=data.images, sketches=data.sketches, boxes=data.boxes, masks=data.masks,
                 captions=json.dumps(data.captions), plain_captions=json.dumps(data.plain_captions))
    return data
