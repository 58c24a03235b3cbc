"""Run folders to evaluate: ours (``sketchstory generate``), baselines, and other systems' outputs.

A run folder holds ``panels/panel_NN.png`` (prompt in the PNG metadata, else ``story.json``),
``conditions/panel_NN_sketch.png`` / ``_canny.png`` for sketched panels, and optionally
``run.json`` (time, memory). ``import_outputs`` turns a folder of another system's pictures plus
the story it was made from into such a folder, so every system is measured by the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from sketchstory.atomic import atomic_write_text
from sketchstory.eval.psnr import PICTURE_SUFFIXES
from sketchstory.outputs import output_folder
from sketchstory.pipeline.conditions import sketch_file
from sketchstory.pipeline.runner import panel_path
from sketchstory.provenance import read_png_meta, save_png
from sketchstory.sketches import canny_condition, load_image, normalize_sketch
from sketchstory.story import Story, load_story


@dataclass(frozen=True)
class RunPanel:
    index: int
    image: Path
    prompt: str | None
    sketch: Path | None  # the normalised sketch the panel was drawn from
    canny: Path | None  # the ControlNet condition made from it
    characters: tuple[str, ...] = ()  # who is in it, from the run's story.json


@dataclass(frozen=True)
class Run:
    path: Path
    system: str
    story: str  # the run folder's name: runs of one story by different systems share it
    panels: tuple[RunPanel, ...]
    info: dict[str, Any]  # run.json, or {} when the system recorded nothing


def is_run(path: Path) -> bool:
    return (Path(path) / "panels").is_dir()


def _story_panels(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Each panel's (full prompt, character names) from the run's story.json; [] without one."""
    file = path / "story.json"
    if not file.exists():
        return []
    story = load_story(file, check_files=False)
    return [(story.full_prompt(n), tuple(c.name for c in story.panel_characters(n))) for n in range(len(story.panels))]


def load_run(path: Path, system: str) -> Run:
    path = Path(path)
    images = sorted((path / "panels").glob("panel_*.png"))
    if not images:
        raise ValueError(f"{path}: no panels/panel_NN.png to evaluate")
    story = _story_panels(path)
    panels = []
    for image in images:
        n = int(image.stem.split("_")[1])
        meta = read_png_meta(image) or {}
        prompt, characters = story[n] if n < len(story) else (None, ())
        sketch, canny = (path / "conditions" / f"panel_{n:02d}_{kind}.png" for kind in ("sketch", "canny"))
        panels.append(RunPanel(n, image, meta.get("prompt") or prompt, sketch if sketch.exists() else None,
                               canny if canny.exists() else None, characters))
    info_file = path / "run.json"
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    return Run(path, system, path.name, tuple(panels), info)


def discover(targets: list[str]) -> list[Run]:
    """Runs named on the command line, each as ``[SYSTEM=]PATH``.

    PATH may be a run folder, a system folder (run folders inside: one per story) or a folder of
    system folders (what ``eval baselines`` writes). Without ``SYSTEM=`` a run's system is the
    name of the system folder, or of the run folder itself when given alone.
    """
    runs: list[Run] = []
    for target in targets:
        name, path = None, Path(target)
        if "=" in target and not path.exists():
            label, rest = target.split("=", 1)
            name, path = label, Path(rest)
        if is_run(path):
            runs.append(load_run(path, name or path.name))
            continue
        if not path.is_dir():
            raise ValueError(f"{path}: not a folder")
        children = sorted(p for p in path.iterdir() if p.is_dir())
        if any(is_run(c) for c in children):
            runs += [load_run(c, name or path.name) for c in children if is_run(c)]
            continue
        nested = [(s, r) for s in children for r in sorted(s.iterdir()) if r.is_dir() and is_run(r)]
        if not nested:
            raise ValueError(f"{path}: no run folders (folders with panels/) in it or one level below")
        runs += [load_run(r, f"{name}/{s.name}" if name else s.name) for s, r in nested]
    return runs


def picture_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)


def import_outputs(pictures: Path, story_file: Path, out: Path, system: str,
                   seconds: float | None = None, peak_bytes: int | None = None) -> Run:
    """Make a run folder from another system's pictures of a story (sorted by name = panel order).

    The story's sketches are normalised at each picture's size, so sketch fidelity can be
    measured; time and memory are recorded only when given, never guessed.
    """
    story = load_story(story_file)
    files = picture_files(pictures)
    if len(files) != len(story.panels):
        raise ValueError(f"{pictures}: {len(files)} picture(s) for a story of {len(story.panels)} panels; "
                         "give one picture per panel, named in panel order")
    with output_folder(out, inputs=[story_file.parent, pictures]):
        return _import(story, story_file, files, Path(out), system, seconds, peak_bytes)


def _import(story: Story, story_file: Path, files: list[Path], out: Path, system: str, seconds: float | None,
            peak_bytes: int | None) -> Run:
    for n, file in enumerate(files):
        image = load_image(file).convert("RGB")
        save_png(image, panel_path(out, n), {"panel": n, "prompt": story.full_prompt(n), "imported_from": str(file),
                                            "system": system})
        _write_conditions(story, story_file.parent, n, image.size, out)
    atomic_write_text(out / "story.json", story.to_json())
    info = {"system": system, "imported": True, "title": story.title, "total_seconds": seconds,
            "peak_cuda_bytes": peak_bytes, "panels": [{"index": n, "file": str(f)} for n, f in enumerate(files)]}
    atomic_write_text(out / "run.json", json.dumps(info, indent=2) + "\n")
    return load_run(out, system)


def _write_conditions(story: Story, story_dir: Path, n: int, size: tuple[int, int], out: Path) -> None:
    ref = story.panels[n].sketch
    if ref is None:
        return
    sketch = normalize_sketch(load_image(sketch_file(story_dir, ref)), size)
    save_png(sketch, out / "conditions" / f"panel_{n:02d}_sketch.png")
    save_png(canny_condition(sketch, story.settings.canny_low, story.settings.canny_high),
             out / "conditions" / f"panel_{n:02d}_canny.png")


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")
