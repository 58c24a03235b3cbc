"""Training data from the toy world: images, sketches, Canny control images and captions.

The set is made of two-panel pages: samples ``2i`` and ``2i + 1`` show the same character (same
spoken and hidden colours) in two different scenes (see ``pages.py`` for how training uses them).
A share of pages (``duo_share``) shows a pair of characters instead (``duo.py``): both in the first
panel, both or one of them in the second, so attention learns to copy each from its own twin.
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
from sketchstory.demo import duo
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


def render_world(count: int, size: int, seed: int, duo_share: float = 0.0) -> WorldData:
    """``count // 2`` two-panel world stories ``seed * count ...`` (disjoint across seeds), flattened;
    a ``duo_share`` of them (drawn per page from the seed) two-character pages."""
    count -= count % 2
    images = np.empty((count, size, size, 3), np.uint8)
    sketches = np.empty((count, size, size), np.uint8)
    masks = np.empty((count, size, size), bool)
    boxes = np.empty((count, 4), np.int64)
    captions, plain = [], []
    duo_pages = np.random.default_rng([seed, 5]).random(count // 2) < duo_share
    for page in tqdm(range(count // 2), desc="rendering the toy world", leave=False):
        if duo_pages[page]:
            for j, p in enumerate(duo.training_page(seed * count + page, size)):
                cover = np.logical_or.reduce([m["character"] for m in p.masks])
                ys, xs = np.nonzero(cover)
                i = 2 * page + j
                images[i], sketches[i], masks[i] = p.image, p.sketch, cover
                boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                captions.append(p.caption)
                plain.append(duo.plain_caption(p))
            continue
        for j, s in enumerate(make_story(seed * count + page, 2, size).panels):
            i = 2 * page + j
            images[i], sketches[i], masks[i], boxes[i] = s.image, s.sketch, s.masks["character"], s.bbox
            captions.append(s.caption)
            plain.append(s.scene.describe(colour=False))
    return WorldData(images, sketches, boxes, masks, captions, plain)


def load_or_render(path: Path, count: int, size: int, seed: int, duo_share: float = 0.0) -> WorldData:
    """The cached set at ``path`` if it was made with these settings, else a fresh one (then cached)."""
    # Sets without two-character pages keep their old key, so earlier runs resume on their cache.
    key = json.dumps({"count": count, "size": size, "seed": seed, "format": 3} | ({"duo": duo_share} if duo_share else {}))
    if path.exists():
        with np.load(path) as z:
            if str(z["key"]) == key:
                return WorldData(z["images"], z["sketches"], z["boxes"], z["masks"], json.loads(str(z["captions"])),
                                 json.loads(str(z["plain_captions"])))
    data = render_world(count, size, seed, duo_share)
    with atomic_path(path) as tmp:
        np.savez(tmp, key=key, images=data.images, sketches=data.sketches, boxes=data.boxes, masks=data.masks,
                 captions=json.dumps(data.captions), plain_captions=json.dumps(data.plain_captions))
    return data
