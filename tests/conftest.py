"""Shared fixtures: tiny random models of the real classes and small stories with drawn sketches."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sketchstory.models import Components, load, REGISTRY

SIZE = 32  # tiny model: 32x32 images, 16x16 latents


@pytest.fixture(scope="session")
def tiny() -> Components:
    return load(REGISTRY["tiny"], "cpu")


def draw_figure(path: Path, size: int, x: float, scale: float = 1.0) -> Path:
    """A stick-figure-like sketch: head, body, arms; black lines on white."""
    img = np.full((size, size), 255, np.uint8)
    cx, s = int(x * size), scale * size
    cv2.circle(img, (cx, int(0.3 * s)), max(2, int(0.12 * s)), 0, 1)
    cv2.line(img, (cx, int(0.42 * s)), (cx, int(0.75 * s)), 0, 1)
    cv2.line(img, (cx - int(0.2 * s), int(0.55 * s)), (cx + int(0.2 * s), int(0.55 * s)), 0, 1)
    cv2.line(img, (cx, int(0.75 * s)), (cx - int(0.15 * s), int(0.95 * s)), 0, 1)
    cv2.imwrite(str(path), img)
    return path


def write_story(folder: Path, n_panels: int = 3, *, sketches: bool = True, **settings) -> Path:
    """A story file with ``n_panels`` panels (the third without a sketch) for the tiny model."""
    folder.mkdir(parents=True, exist_ok=True)
    panels = []
    prompts = ["a young wizard stands in a forest", "the wizard finds a blue hat", "the wizard meets a creature",
               "the wizard turns into crystal", "the wizard sleeps", "the wizard flies"]
    for i in range(n_panels):
        panel = {"prompt": prompts[i % len(prompts)], "caption": f"Panel {i + 1}", "seed": 10 + i}
        if sketches and i != 2:
            (folder / "sketches").mkdir(exist_ok=True)
            draw_figure(folder / "sketches" / f"{i:02d}.png", 64, 0.3 + 0.1 * i)
            panel["sketch"] = f"sketches/{i:02d}.png"
        panels.append(panel)
    base = {"model": "tiny", "width": SIZE, "height": SIZE, "steps": 4, "guidance_scale": 5.0,
            "maga": {"start_step": 1, "memory": "all"}}
    base.update(settings)
    doc = {"title": "Test story", "characters": [{"name": "wizard", "description": "in a red cape"}],
           "panels": panels, "settings": base}
    path = folder / "story.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    return write_story(tmp_path / "story")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def ui_widgets():
    """The web UI's components, built once (the UI tests skip without the 'ui' extra)."""
    gr = pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")
    from sketchstory.ui.widgets import build_widgets

    with gr.Blocks():
        return build_widgets("work")


@pytest.fixture
def ui_page(ui_widgets, story_file: Path, tmp_path: Path):
    """(handlers, widgets) of a page whose work folder holds ``story_file``'s story (no server, no browser)."""
    from sketchstory.ui.handlers import Handlers
    from sketchstory.ui.render import Renderer
    from sketchstory.ui.workspace import Workspace

    ws = Workspace(tmp_path / "work")
    ws.save(ws.import_story(story_file)[0])
    return Handlers(ws, Renderer("cpu"), ui_widgets), ui_widgets
