"""The (start_layer, start_step) ablation of the thesis's Fig 4.3, on one story.

Every cell renders the story with the thesis's MAGA (memory ``all``) starting at that layer and
step, into ``OUT/cells/layerL_stepS/STORY/`` (so ``sketchstory eval OUT/cells`` scores each cell
as a system); ``OUT/ablation.png`` puts the panels of each cell in a row, cells in a grid:
rows are start steps, columns start layers, as in the thesis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from sketchstory.atomic import atomic_write_text
from sketchstory.eval.baselines import SOURCE, THESIS_MAGA
from sketchstory.eval.runs import open_rgb
from sketchstory.models import ComponentCache, Components
from sketchstory.outputs import output_folder
from sketchstory.pipeline.runner import RunOptions, generate, panel_path
from sketchstory.pipeline.story_files import story_name
from sketchstory.provenance import save_png
from sketchstory.story import Story, load_story

DEFAULT_LAYERS = [0, 4, 8, 12]
DEFAULT_STEPS = ["0/50", "12/50", "24/50", "36/50"]
MIN_PANEL_HEIGHT = 128  # small demo panels are enlarged (nearest neighbour) so the grid is legible


def cell_name(layer: int, step: str) -> str:
    return f"layer{layer}_step{step.replace('/', 'of')}"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def compose_grid(cells: list[list[list[Image.Image]]], row_labels: list[str], column_labels: list[str],
                 gap: int = 8) -> Image.Image:
    """``cells[row][column]`` is a list of panels shown side by side; labels on top and left."""
    first = cells[0][0][0]
    zoom = max(1, math.ceil(MIN_PANEL_HEIGHT / first.height))
    pw, ph = first.width * zoom, first.height * zoom
    per_cell = max(len(c) for row in cells for c in row)
    font = _font(max(12, ph // 8))
    label_w = max(int(font.getlength(t)) for t in row_labels) + 2 * gap
    _, top, _, bottom = font.getbbox("Ág")
    label_h = int(1.6 * (bottom - top)) + gap
    seam = 2  # white line between the panels of one cell
    cell_w = per_cell * (pw + seam) - seam
    grid = Image.new("RGB", (label_w + len(column_labels) * (cell_w + gap), label_h + len(row_labels) * (ph + gap)),
                     "white")
    draw = ImageDraw.Draw(grid)
    for c, text in enumerate(column_labels):
        centre = (label_w + c * (cell_w + gap) + cell_w // 2, label_h // 2)
        draw.text(centre, text, fill="black", font=font, anchor="mm")
    for r, (text, row) in enumerate(zip(row_labels, cells, strict=True)):
        y = label_h + r * (ph + gap)
        draw.text((gap, y + ph // 2), text, fill="black", font=font, anchor="lm")
        for c, panels in enumerate(row):
            x = label_w + c * (cell_w + gap)
            for k, panel in enumerate(panels):
                grid.paste(panel.resize((pw, ph), Image.Resampling.NEAREST), (x + k * (pw + seam), y))
    return grid


def run_ablation(story_file: Path, out: Path, layers: list[int], steps: list[str], overrides: dict[str, Any],
                 options: RunOptions, components: Components | None = None,
                 on_cell: Callable[[str], None] | None = None) -> Path:
    """Render every (step, layer) cell and write ``ablation.png`` and ``ablation.json``; returns the image.

    ``out`` must be new, empty or sketchstory's (see :mod:`sketchstory.outputs`), and not the story's folder.
    """
    story = load_story(story_file)
    with output_folder(Path(out), inputs=[story_file.parent]):
        return _grid(story, story_file, Path(out), layers, steps, overrides, options,
                     ComponentCache(options.device, preloaded=components), on_cell)


def _grid(story: Story, story_file: Path, out: Path, layers: list[int], steps: list[str], overrides: dict[str, Any],
          options: RunOptions, cache: ComponentCache, on_cell: Callable[[str], None] | None) -> Path:
    cells: list[list[list[Image.Image]]] = []
    record: list[dict[str, Any]] = []
    for step in steps:
        row = []
        for layer in layers:
            maga = THESIS_MAGA | {"start_layer": layer, "start_step": step}
            variant = story.with_settings(overrides | {f"maga.{key}": value for key, value in maga.items()}, SOURCE)
            run_dir = out / "cells" / cell_name(layer, step) / story_name(story_file)
            if on_cell is not None:
                on_cell(cell_name(layer, step))
            generate(variant, story_file.parent, run_dir, options, cache(variant.settings))
            row.append([open_rgb(panel_path(run_dir, n)) for n in range(len(variant.panels))])
            record.append({"start_layer": layer, "start_step": step, "run": str(run_dir.relative_to(out)),
                           "resolved_start_step": variant.settings.maga.resolved_start_step(variant.settings.steps)})
        cells.append(row)
    grid = compose_grid(cells, [f"step {s}" for s in steps], [f"layer {layer}" for layer in layers])
    atomic_write_text(out / "ablation.json", json.dumps({"story": str(story_file), "rows": "start_step",
                                                          "columns": "start_layer", "cells": record}, indent=2) + "\n")
    return save_png(grid, out / "ablation.png")
