"""PSNR against the mean image of a reference folder, as the thesis's Table 5.2 (400 ImageNet images).

The mean image is computed at the panel size (each reference resized, then averaged in float)
and cached as ``.npy`` under a key made of the folder's content hash and the size, so a changed
folder never reuses a stale mean.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sketchstory.atomic import atomic_write

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def default_cache_dir() -> Path:
    return Path(os.environ.get("SKETCHSTORY_CACHE", Path.home() / ".cache" / "sketchstory")) / "eval"


def reference_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise ValueError(f"reference folder {folder} holds no pictures ({', '.join(sorted(PICTURE_SUFFIXES))})")
    return files


def folder_hash(folder: Path) -> str:
    """Hash of every picture's relative path and bytes: equal content, equal key."""
    digest = hashlib.sha256()
    for path in reference_files(folder):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def mean_image(folder: Path, size: tuple[int, int], cache_dir: Path | None = None) -> np.ndarray:
    """Float32 (height, width, 3) mean of the folder's pictures resized to ``size=(w, h)``; cached."""
    folder = Path(folder)
    cache = (cache_dir or default_cache_dir()) / f"mean-{folder_hash(folder)}-{size[0]}x{size[1]}.npy"
    if cache.exists():
        return np.load(cache)
    total = np.zeros((size[1], size[0], 3), np.float64)
    count = 0
    for path in reference_files(folder):
        try:
            with Image.open(path) as im:
                total += np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float64)
            count += 1
        except (OSError, UnidentifiedImageError):
            continue  # an unreadable file is not a reference picture
    if not count:
        raise ValueError(f"no readable pictures in reference folder {folder}")
    mean = (total / count).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, lambda tmp: np.save(tmp, mean, allow_pickle=False))
    return mean


def psnr(image: Image.Image, reference: np.ndarray) -> float:
    """PSNR in dB of an 8-bit RGB image against a float reference of the same size."""
    pixels = np.asarray(image.convert("RGB").resize((reference.shape[1], reference.shape[0]),
                                                    Image.Resampling.BICUBIC), np.float64)
    mse = float(np.mean((pixels - reference) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
