"""Properties of the story format: any document gets a story or a StoryError, valid stories round-trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sketchstory.story import Story, StoryError, load_story, parse_story, save_story

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
KEYS = {
    "": ["schema", "version", "title", "style", "negative_prompt", "characters", "panels", "settings"],
    "panel": ["prompt", "sketch", "caption", "characters", "setting", "seed"],
    "settings": ["model", "controlnet", "seed", "width", "height", "steps", "guidance_scale", "controlnet_scale",
                 "scheduler", "canny_low", "canny_high", "mode", "chunk_size", "maga"],
    "maga": ["enabled", "start_layer", "start_step", "memory", "strength", "tau", "token_budget", "memory_budget_mb",
             "subject_mask", "background", "gain", "memory_guidance"],
}


def shaped(part: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the format's own keys (and sometimes others), holding anything."""
    value = JSON
    if part == "":
        value = JSON | st.lists(shaped("panel"), max_size=3) | shaped("settings")
    elif part == "settings":
        value = JSON | shaped("maga")
    return st.dictionaries(st.sampled_from(KEYS[part]) | st.text(max_size=8), value, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=JSON | shaped(""))
def test_any_document_gives_a_story_or_a_story_error(doc: Any) -> None:
    try:
        story = parse_story(doc)
    except StoryError as e:
        assert e.problems and all(isinstance(p, str) and p for p in e.problems)
        return
    assert isinstance(story, Story)


def _stories() -> st.SearchStrategy[dict[str, Any]]:
    text = st.text(min_size=1, max_size=40).filter(str.strip)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        names = draw(st.lists(st.text(min_size=1, max_size=12), max_size=3, unique=True))
        panels = draw(st.lists(st.fixed_dictionaries(
            {"prompt": text},
            optional={"caption": st.text(max_size=30), "seed": st.integers(0, 2**63 - 1),
                      "characters": st.lists(st.sampled_from(names), unique=True) if names else st.just([])},
        ), min_size=1, max_size=6))
        steps = draw(st.integers(1, 1000))
        start = draw(st.integers(0, steps - 1) | st.sampled_from(["0/1", "1/2", "24/50"]).filter(
            lambda s: round(int(s.split("/")[0]) * steps / int(s.split("/")[1])) < steps))
        low = draw(st.integers(0, 254))
        return {
            "title": draw(st.text(max_size=30)), "style": draw(st.text(max_size=30)),
            "characters": [{"name": n, "description": draw(st.text(max_size=30))} for n in names],
            "panels": panels,
            "settings": {
                "seed": draw(st.integers(0, 2**63 - 1)), "width": 8 * draw(st.integers(1, 512)),
                "height": 8 * draw(st.integers(1, 512)), "steps": steps,
                "guidance_scale": draw(st.floats(0, 50)), "scheduler": draw(st.sampled_from(["ddim", "euler"])),
                "canny_low": low, "canny_high": draw(st.integers(low + 1, 255)),
                "maga": {"start_step": start, "start_layer": draw(st.integers(0, 16)),
                         "memory": draw(st.sampled_from(["all", "window:3", "anchors:0+window:2", "decay:0.5"])),
                         "token_budget": draw(st.none() | st.integers(1, 4096))},
            },
        }

    return build()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_stories())
def test_valid_stories_round_trip_through_files(doc: dict[str, Any], tmp_path: Path) -> None:
    story = parse_story(doc)
    path = save_story(story, tmp_path / "story.json")
    again = load_story(path, check_files=False)
    assert again == story
    assert save_story(again, tmp_path / "again.json").read_text() == path.read_text()
    assert parse_story(json.loads(story.to_json())) == story


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_gives_a_story_or_a_story_error(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "story.json"
    path.write_bytes(data)
    try:
        load_story(path, check_files=False)
    except StoryError as e:
        assert e.problems
