"""What a story leaves unsaid follows its model; what it says, from file, flag or form, wins."""

from __future__ import annotations

import pytest

from sketchstory.models.specs import REGISTRY, native_settings
from sketchstory.pipeline.model_settings import follow_model, rerouted
from sketchstory.story import MagaSettings, StoryError, parse_story


def story(settings: dict | None = None):
    doc = {"panels": [{"prompt": "a wizard"}]}
    return parse_story(doc | ({"settings": settings} if settings is not None else {}))


def test_a_story_without_settings_gets_the_demo_models_size_steps_and_maga_start() -> None:
    s = follow_model(story()).settings
    demo = REGISTRY["demo"]
    assert (s.width, s.height, s.steps, s.guidance_scale) == (demo.native_size, demo.native_size, demo.steps, demo.guidance)
    assert (s.maga.start_layer, s.maga.start_step) == (0, 0)
    assert s.maga.memory == demo.maga["memory"]
    assert s.maga.tau == MagaSettings().tau  # what the model does not name stays the format's default


def test_what_the_story_gives_wins_over_the_model() -> None:
    s = follow_model(story({"steps": 7, "maga": {"start_layer": 4}})).settings
    assert (s.steps, s.maga.start_layer, s.width) == (7, 4, 64)
    assert s.maga.start_step == 0


def test_a_real_model_keeps_the_thesis_start() -> None:
    s = follow_model(story({"model": "sd15"})).settings
    assert (s.width, s.steps, s.maga.start_layer, s.maga.start_step) == (512, 30, 8, "24/50")


def test_an_unknown_model_is_left_as_the_story_says() -> None:
    original = story({"model": "some/hub-model"})
    assert native_settings("some/hub-model") == {}
    assert follow_model(original) == original


def test_changed_settings_stay_given_and_the_rest_unsaid() -> None:
    changed = story().with_settings({"maga.gain": 1.0, "steps": 9})
    assert changed.explicit_settings() == {"maga.gain", "steps"}
    s = follow_model(changed).settings
    assert (s.steps, s.maga.gain, s.maga.start_layer, s.width) == (9, 1.0, 0, 64)


def placed_story(settings: dict | None = None):
    doc = {"version": 2, "characters": [{"name": "wizard"}],
           "panels": [{"prompt": "a wizard", "characters": [{"name": "wizard", "box": [0.1, 0.1, 0.6, 0.9]}]}]}
    return parse_story(doc | ({"settings": settings} if settings is not None else {}))


def test_a_story_that_places_its_characters_gets_the_models_routed_maga_settings() -> None:
    demo = REGISTRY["demo"]
    routed = {**demo.maga, **demo.maga_routed}
    assert routed["start_layer"] != demo.maga["start_layer"]
    assert follow_model(story()).settings.maga.start_layer == demo.maga["start_layer"]
    s = follow_model(placed_story()).settings
    assert (s.maga.start_layer, s.maga.gain, s.maga.start_step) == (routed["start_layer"], routed["gain"], routed["start_step"])
    assert follow_model(placed_story({"maga": {"start_layer": 2}})).settings.maga.start_layer == 2  # the story's own wins
    # MAGA off: nothing is routed, so nothing routed applies
    assert follow_model(placed_story({"maga": {"enabled": False}})).settings.maga.start_layer == demo.maga["start_layer"]


def test_placing_the_first_character_moves_the_settings_still_at_the_models_to_its_routed_ones() -> None:
    demo = REGISTRY["demo"]
    before = story().with_settings(native_settings("demo"))  # as the web UI holds it: every native written out
    doc = before.model_dump(mode="json", by_alias=True, exclude_unset=True)
    placed = placed_story(doc["settings"])
    changes = rerouted(before, placed)
    assert changes == {f"maga.{k}": v for k, v in demo.maga_routed.items()}
    now = placed.with_settings(changes)
    unplaced = story(now.model_dump(mode="json", by_alias=True, exclude_unset=True)["settings"])  # the box removed
    assert rerouted(now, unplaced) == {f"maga.{k}": demo.maga[k] for k in demo.maga_routed}
    mine = placed_story(doc["settings"] | {"maga": doc["settings"]["maga"] | {"start_layer": 2}})
    assert "maga.start_layer" not in rerouted(before, mine)  # a value the user chose stays
    assert rerouted(before, before) == {} and rerouted(placed, placed) == {}


def test_a_flag_for_another_model_takes_that_models_settings() -> None:
    s = follow_model(story().with_settings({"model": "sd15"})).settings
    assert (s.width, s.maga.start_step) == (512, "24/50")


@pytest.mark.parametrize("key", ["nothing.here", "steps.inner", "maga.start_layer.x"])
def test_a_setting_that_does_not_exist_is_refused(key: str) -> None:
    with pytest.raises(StoryError, match="no such setting|Extra inputs|not a valid"):
        story().with_settings({key: 1})


def test_the_models_command_shows_what_a_story_without_settings_gets(capsys: pytest.CaptureFixture[str]) -> None:
    from sketchstory.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert ("defaults: 64 px, 20 steps, guidance 4; MAGA from layer 0, step 0, memory anchors:0, gain 1, memory guidance 1, "
            "subject mask; "
            "placed characters: start layer 5\n") in out
    assert "defaults: 512 px, 30 steps, guidance 7.5; MAGA from layer 8, step 24/50, memory anchors:0+window:2, gain 0\n" in out
