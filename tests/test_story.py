"""The story document: validation with locations, round-trip, derived prompts and seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sketchstory.story import Story, StoryError, load_story, parse_story, save_story


def doc(**over) -> dict:
    base = {"title": "t", "characters": [{"name": "Wizard", "description": "a young wizard, red cape"}],
            "panels": [{"prompt": "the Wizard stands in a forest"}, {"prompt": "a dragon sleeps", "seed": 5}]}
    base.update(over)
    return base


def test_round_trip_is_lossless(tmp_path: Path, story_file: Path) -> None:
    story = load_story(story_file)
    out = save_story(story, tmp_path / "again.json")
    assert load_story(out, check_files=False) == story
    saved, full = json.loads(out.read_text()), json.loads(story.to_json())
    assert {k: v for k, v in saved.items() if k != "settings"} == {k: v for k, v in full.items() if k != "settings"}
    assert saved["settings"] == json.loads(story_file.read_text())["settings"]  # what the file gave, no more


def test_settings_a_story_never_gave_stay_unsaid_when_saved(tmp_path: Path) -> None:
    story = parse_story(doc())
    assert "settings" not in json.loads(save_story(story, tmp_path / "a.json").read_text())
    edited = load_story(save_story(story.with_settings({"maga.gain": 1.5}), tmp_path / "b.json"), check_files=False)
    assert json.loads((tmp_path / "b.json").read_text())["settings"] == {"maga": {"gain": 1.5}}
    assert edited.explicit_settings() == {"maga.gain"}


def test_every_problem_is_reported_with_its_location() -> None:
    bad = doc(panels=[{"prompt": ""}, {"prompt": "x", "seed": -1, "colour": "red"}],
              settings={"width": 500, "steps": 0, "maga": {"memory": "window:0"}})
    with pytest.raises(StoryError) as err:
        parse_story(bad)
    text = str(err.value)
    for where in ("panels[0].prompt", "panels[1].seed", "panels[1].colour: unknown field", "settings.steps",
                  "settings.maga.memory"):
        assert where in text, text
    assert len(err.value.problems) >= 5


def test_settings_are_checked_together() -> None:
    with pytest.raises(StoryError, match="width 500 is not a multiple of 8"):
        parse_story(doc(settings={"width": 500}))
    with pytest.raises(StoryError, match="start_step resolves to step 30"):
        parse_story(doc(settings={"steps": 30, "maga": {"start_step": 30}}))
    with pytest.raises(StoryError, match="canny_low"):
        parse_story(doc(settings={"canny_low": 200, "canny_high": 100}))


def test_start_step_fraction_scales_with_steps() -> None:
    story = parse_story(doc(settings={"steps": 30}))
    assert story.settings.maga.resolved_start_step(30) == 14  # thesis 24/50 on 30 steps
    assert story.settings.maga.resolved_start_step(50) == 24


def test_with_settings_changes_named_settings_and_validates_them() -> None:
    story = parse_story(doc())
    changed = story.with_settings({"steps": 20, "maga.start_step": " 12 ", "maga.memory": "all"})
    assert (changed.settings.steps, changed.settings.maga.start_step, changed.settings.maga.memory) == (20, 12, "all")
    assert changed.panels == story.panels and story.settings.steps == 30
    assert story.with_settings({"maga": {"enabled": False}}).settings.maga.start_layer == 8  # replaced whole
    with pytest.raises(StoryError, match="flags: invalid story:\n  - settings.steps: Input should be greater"):
        story.with_settings({"steps": 0}, "flags")
    with pytest.raises(StoryError, match="settings.colour.hue: there is no such setting"):
        story.with_settings({"colour.hue": 1})
    with pytest.raises(StoryError, match="maga.nope: unknown field"):
        story.with_settings({"maga.nope": 1})


def test_unknown_version_and_non_object_are_refused() -> None:
    with pytest.raises(StoryError, match="version 2"):
        parse_story(doc(version=2))
    with pytest.raises(StoryError, match="JSON object"):
        parse_story([1, 2])
    with pytest.raises(StoryError, match="panels"):
        parse_story(doc(panels=[]))


def test_unknown_character_and_duplicates() -> None:
    with pytest.raises(StoryError, match=r"panels\[0\].characters: unknown character 'Knight'"):
        parse_story(doc(panels=[{"prompt": "x", "characters": ["Knight"]}]))
    with pytest.raises(StoryError, match="used twice"):
        parse_story(doc(characters=[{"name": "A"}, {"name": "A"}]))


def test_malformed_json_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"panels": [\n  {"prompt": "x",}\n]}')
    with pytest.raises(StoryError, match="line 2"):
        load_story(path)
    with pytest.raises(StoryError, match="file not found"):
        load_story(tmp_path / "missing.json")


def test_sketch_files_checked_and_confined(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc(panels=[{"prompt": "x", "sketch": "nope.png"},
                                           {"prompt": "y", "sketch": "../../etc/passwd"}])))
    with pytest.raises(StoryError) as err:
        load_story(path)
    assert "panels[0].sketch: file not found: nope.png" in str(err.value)
    assert "panels[1].sketch" in str(err.value) and "leaves the story's folder" in str(err.value)


def test_prompt_gets_present_characters_and_style() -> None:
    story = parse_story(doc(style="anime style"))
    assert story.full_prompt(0) == "the Wizard stands in a forest, a young wizard, red cape, anime style"
    assert story.full_prompt(1) == "a dragon sleeps, anime style"  # the wizard is not mentioned


def test_seeds_are_explicit_or_derived_from_position() -> None:
    story: Story = parse_story(doc(settings={"seed": 3}))
    assert story.panel_seed(1) == 5
    assert story.panel_seed(0) == parse_story(doc(settings={"seed": 3})).panel_seed(0)
    assert story.panel_seed(0) != parse_story(doc(settings={"seed": 4})).panel_seed(0)
