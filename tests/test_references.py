"""A character's reference picture as its anchor memory: recorded once, then read from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import write_story
from sketchstory.cli import main


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_a_reference_is_the_anchor_recorded_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    story = write_story(tmp_path / "s", 3, maga={"start_step": 1, "memory": "anchors:0+window:1"})
    doc = json.loads(story.read_text())
    gen = np.random.default_rng(0)
    Image.fromarray(gen.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(tmp_path / "s" / "wizard.png")
    doc["characters"][0]["reference"] = "wizard.png"
    doc["panels"][0]["characters"] = [{"name": "wizard", "box": [0.1, 0.1, 0.6, 1.0]}]
    story.write_text(json.dumps(doc))
    out, fresh = tmp_path / "out", tmp_path / "fresh"

    def run(folder: Path) -> dict:
        assert main(["generate", str(story), "-o", str(folder), "-q", "--mode", "sequential"]) == 0
        return json.loads((folder / "run.json").read_text())

    assert run(out)["reference_memory"] == {"recorded": ["wizard"], "cached": []}
    assert len(list((out / "memory").glob("reference_*.safetensors"))) == 1
    first = [pixels(out / f"panels/panel_{n:02d}.png") for n in range(3)]
    assert run(out)["reference_memory"] == {"recorded": [], "cached": ["wizard"]}
    assert run(fresh)["reference_memory"] == {"recorded": ["wizard"], "cached": []}
    for n in range(3):  # from the cache or recorded anew: the same memory, the same panels
        assert (pixels(out / f"panels/panel_{n:02d}.png") == first[n]).all()
        assert (pixels(fresh / f"panels/panel_{n:02d}.png") == first[n]).all()
    # Without the reference, the wizard's first panel reads no memory: it renders otherwise.
    doc["characters"][0]["reference"] = None
    story.write_text(json.dumps(doc))
    assert run(tmp_path / "none")["reference_memory"] == {"recorded": [], "cached": []}
    assert np.abs(pixels(tmp_path / "none/panels/panel_00.png") - first[0]).max() > 2
