"""Provenance: every output PNG carries what is needed to reproduce it, in its text metadata."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from sketchstory import __version__
from sketchstory.atomic import atomic_write

META_KEY = "sketchstory"


def versions() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    return {"sketchstory": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "transformers": transformers.__version__}


def fingerprint(data: Any) -> str:
    """A stable hash of JSON-able data (settings, prompts, sketch hashes): equal inputs, equal hash."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def save_png(image: Image.Image, path: Path, meta: dict[str, Any] | None = None) -> Path:
    """Write a PNG atomically, with ``meta`` as JSON under the ``sketchstory`` text key."""
    info = PngImagePlugin.PngInfo()
    if meta is not None:
        info.add_text(META_KEY, json.dumps(meta, ensure_ascii=False))
    return atomic_write(Path(path), lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def read_png_meta(path: Path) -> dict[str, Any] | None:
    """The sketchstory metadata of a PNG, or None if the file is missing, unreadable or has none."""
    try:
        with Image.open(path) as im:
            text = im.text.get(META_KEY) if hasattr(im, "text") else None
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None
