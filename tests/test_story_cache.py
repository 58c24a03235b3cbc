"""Work done once per story, not per panel: text encodings, sketch conditions, the scheduler's setup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import write_story
import sketchstory.pipeline.conditions as conditions
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story


def test_identical_texts_and_sketches_are_encoded_once(tiny, tmp_path: Path, monkeypatch) -> None:
    path = write_story(tmp_path / "s", 4, mode="sequential")
    doc = json.loads(path.read_text())
    doc["panels"][3] |= {"prompt": doc["panels"][0]["prompt"], "sketch": doc["panels"][0]["sketch"]}
    path.write_text(json.dumps(doc))
    calls = {"text": 0, "canny": 0}
    forward, canny = tiny.text_encoder.forward, conditions.canny_condition

    def count(name, fn):
        def counted(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return counted

    monkeypatch.setattr(tiny.text_encoder, "forward", count("text", forward))
    monkeypatch.setattr(conditions, "canny_condition", count("canny", canny))
    generate(load_story(path), path.parent, tmp_path / "out", RunOptions(progress=False), tiny)
    assert calls == {"text": 1 + 3, "canny": 2}  # the negative prompt and 3 distinct prompts; 2 distinct sketches


def test_each_chunk_steps_a_fresh_copy_of_the_scheduler(tiny, tmp_path: Path) -> None:
    # DPM-Solver++ keeps earlier model outputs: a scheduler reused without a copy would carry panel 0's into panel 1.
    path = write_story(tmp_path / "s", 2, mode="sequential", scheduler="dpmpp-2m", maga={"enabled": False})
    story = load_story(path)
    generate(story, path.parent, tmp_path / "both", RunOptions(progress=False), tiny)
    generate(story, path.parent, tmp_path / "one", RunOptions(only=frozenset({1}), progress=False), tiny)
    both, one = (np.asarray(Image.open(tmp_path / d / "panels/panel_01.png")) for d in ("both", "one"))
    assert (both == one).all()
