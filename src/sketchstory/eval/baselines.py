"""Baselines rendered by our own pipeline, so every system sees the same stories, seeds and model.

- ``text-only``: the base model alone (ControlNet scale 0, no MAGA): SD1.5 with the thesis's prompts;
- ``controlnet``: base model + Canny ControlNet on the sketches, no MAGA;
- ``ours-thesis``: MAGA as the thesis ran it: memory ``all``, start layer 8, start step 24/50;
- ``ours-default``: MAGA with sketchstory's default settings (bounded memory).

Each is the story with its settings overridden and passed to ``generate``; results go to
``OUT/SYSTEM/STORY/``, the layout ``sketchstory eval OUT`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sketchstory.models import ComponentCache, Components
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.pipeline.story_files import story_files, story_name
from sketchstory.story import MagaSettings, load_story

THESIS_MAGA = {"enabled": True, "start_layer": 8, "start_step": "24/50", "memory": "all"}

# Each system's settings, as Story.with_settings changes.
SYSTEMS: dict[str, dict[str, Any]] = {
    "text-only": {"controlnet_scale": 0.0, "maga.enabled": False},
    "controlnet": {"maga.enabled": False},
    "ours-thesis": {"maga": {**MagaSettings().model_dump(mode="json"), **THESIS_MAGA}},
    "ours-default": {"maga": {}},  # all unsaid: the model's own MAGA defaults (models.specs)
}
SOURCE = "evaluation settings"  # where a settings problem is reported from


def run_baselines(stories: list[Path], out: Path, systems: list[str], overrides: dict[str, Any],
                  options: RunOptions, components: Components | None = None,
                  on_run: Callable[[str, str], None] | None = None) -> list[Path]:
    """Render every story with every system into ``out/SYSTEM/STORY``; returns the run folders."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}: choose from {', '.join(SYSTEMS)}")
    cache = ComponentCache(options.device, preloaded=components)  # each model loaded once for all systems
    runs = []
    for file in story_files(stories):
        story = load_story(file)
        for system in systems:
            variant = story.with_settings(overrides | SYSTEMS[system], SOURCE)
            run_dir = Path(out) / system / story_name(file)
            if on_run is not None:
                on_run(system, story_name(file))
            generate(variant, file.parent, run_dir, options, cache(variant.settings))
            runs.append(run_dir)
    return runs
