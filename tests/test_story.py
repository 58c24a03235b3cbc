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
    with pytest.raises(StoryError, match="version 3"):
        parse_story(doc(version=3))
    with pytest.raises(StoryError, match="JSON object"):
        parse_story([1, 2])
    with pytest.raises(StoryError, match="panels"):
        parse_story(doc(panels=[]))


def test_unknown_character_and_duplicates() -> None:
    with pytest.raises(StoryError, match=r"panels\[0\].characters\[0\]: unknown character 'Knight'"):
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


def test_version_1_reads_unchanged_and_is_written_while_it_suffices(tmp_path: Path) -> None:
    v1 = doc(version=1, panels=[{"prompt": "the Wizard", "characters": ["Wizard"]}])
    story = parse_story(v1)
    assert story.version == 1 and story.panels[0].names == ("Wizard",)
    written = json.loads(story.to_json())
    assert written["version"] == 1 and written["panels"][0]["characters"] == ["Wizard"]
    assert "setting" not in written["panels"][0] and "background" not in written["settings"]["maga"]
    assert parse_story(doc(version=2)).version == 1  # a version-2 file that needs nothing new is written as 1


def test_placed_characters_need_version_2_and_round_trip(tmp_path: Path) -> None:
    placed = doc(characters=[{"name": "Wizard", "reference": "refs/wizard.png"}, {"name": "Fox"}],
                 panels=[{"prompt": "x", "setting": "forest",
                          "characters": [{"name": "Wizard", "box": [0.05, 0.2, 0.5, 0.95]}, "Fox"]}])
    story = parse_story(placed)
    assert story.version == 2
    assert [(c.name, c.box) for c in story.placements(0)] == [("Wizard", (0.05, 0.2, 0.5, 0.95)), ("Fox", None)]
    written = json.loads(story.to_json())
    assert written["version"] == 2
    assert written["panels"][0]["characters"] == [{"name": "Wizard", "box": [0.05, 0.2, 0.5, 0.95]}, "Fox"]
    assert parse_story(written) == story
    kept_apart = parse_story(doc(settings={"maga": {"background": "none"}}))
    assert kept_apart.version == 2 and json.loads(kept_apart.to_json())["settings"]["maga"]["background"] == "none"
    with pytest.raises(StoryError, match="versions 1 to 2"):
        parse_story(doc(version=3))


def test_placements_are_checked_with_their_locations() -> None:
    bad = doc(characters=[{"name": "A"}, {"name": "B"}],
              panels=[{"prompt": "x", "characters": [{"name": "A", "box": [0.6, 0.1, 0.4, 0.9]},
                                                     {"name": "B", "box": [10, 20, 300, 400]}]},
                      {"prompt": "y", "characters": [{"name": "A", "box": [0, 0, 1]},
                                                     {"name": "B", "box": [0, 0, 1, 1], "mask": "m.png"}]}])
    with pytest.raises(StoryError) as err:
        parse_story(bad)
    problems = err.value.problems
    assert problems[0].startswith("panels[0].characters[0].box: box [0.6, 0.1, 0.4, 0.9] is empty: x0 must be below x1")
    assert problems[1].startswith("panels[0].characters[1].box:") and "pixels? divide by" in problems[1]
    assert problems[2].startswith("panels[1].characters[0].box: box [0, 0, 1] has 3 numbers, not 4")
    assert problems[3] == "panels[1].characters[1]: give a box or a mask, not both"
    with pytest.raises(StoryError) as err:
        parse_story(doc(panels=[{"prompt": "x", "characters": ["Wizard", {"name": "Knight", "box": [0, 0, 1, 1]},
                                                                 {"name": "Wizard"}]}]))
    assert err.value.problems == [
        "panels[0].characters[1]: unknown character 'Knight' (known: Wizard); add it to the story's characters first",
        "panels[0].characters[2]: 'Wizard' is listed twice; list each character once"]


def test_mask_and_reference_files_are_checked_and_confined(tmp_path: Path) -> None:
    from PIL import Image

    from sketchstory.pipeline.conditions import read_masks

    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc(characters=[{"name": "A", "reference": "../a.png"}],
                                   panels=[{"prompt": "x", "characters": [{"name": "A", "mask": "masks/a.png"}]}])))
    with pytest.raises(StoryError) as err:
        load_story(path)
    assert err.value.problems == ["characters[0].reference: path '../a.png' leaves the story's folder: copy the "
                                  "sketch next to the story file", "panels[0].characters[0].mask: file not found: masks/a.png"]
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").write_bytes(b"not a picture")
    story = load_story(path, check_files=False)
    with pytest.raises(StoryError, match=r"panels\[0\].characters\[0\].mask: .*a.png"):
        read_masks(story, tmp_path)
    Image.new("L", (8, 8), 0).save(tmp_path / "masks" / "a.png")
    with pytest.raises(StoryError, match="has no light pixels: paint the character's region white on black"):
        read_masks(story, tmp_path)
    Image.new("L", (8, 8), 255).save(tmp_path / "masks" / "a.png")
    assert list(read_masks(story, tmp_path)) == ["masks/a.png"]
