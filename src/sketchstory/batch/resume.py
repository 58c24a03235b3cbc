"""Whether a story of a batch is finished, decided on the driver without loading any model."""

from __future__ import annotations

from pathlib import Path

from sketchstory.batch.inputs import StoryTask
from sketchstory.pipeline.conditions import PanelInputs, sketch_file
from sketchstory.pipeline.runner import fingerprints, memory_policy, panel_path
from sketchstory.provenance import file_hash, read_png_meta


def finished(task: StoryTask, out: Path, library: Path | None = None) -> bool:
    """``out`` holds the story's whole run (``run.json``) and ``generate --resume`` would render nothing.

    The panels' fingerprints depend on prompts, seeds, settings and the sketch files' hashes, not on
    the model's weights, so they are computed here exactly as the runner computes them.
    """
    story = task.story
    if story is None or not (out / "run.json").is_file():
        return False
    try:
        hashes = [file_hash(sketch_file(task.folder, p.sketch, library)) if p.sketch else None for p in story.panels]
    except (OSError, ValueError):  # a missing sketch: let the worker report it
        return False
    inputs = [PanelInputs(story.full_prompt(n), story.panel_seed(n), digest, None, None, None)
              for n, digest in enumerate(hashes)]
    expected = fingerprints(story, inputs, memory_policy(story))
    return all((read_png_meta(panel_path(out, n)) or {}).get("fingerprint") == fp for n, fp in enumerate(expected))
