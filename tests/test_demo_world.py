"""The toy comic world: determinism, captions that describe the pixels, hidden parts, stories."""

from __future__ import annotations

import numpy as np
import pytest

from sketchstory.demo import world
from sketchstory.demo.consistency import MIN_PIXELS
from sketchstory.demo.figures import HIDDEN_PARTS
from sketchstory.demo.scenery import NIGHT, SETTING_PHRASES, SKY
from sketchstory.demo.world import (
    COLOURS,
    SKETCH_PREFIX,
    Character,
    make_story,
    random_scene,
    render,
    sample,
)

SEEDS = range(60)


def _median_rgb(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.median(image[mask], axis=0)


def test_same_seed_same_sample_and_different_seeds_differ() -> None:
    a, b, c = sample(7), sample(7), sample(8)
    assert a.caption == b.caption
    assert np.array_equal(a.image, b.image) and np.array_equal(a.sketch, b.sketch)
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert a.bbox == b.bbox
    assert not np.array_equal(a.image, c.image)


def test_sample_shapes_and_sketch_is_dark_lines_on_white() -> None:
    s = sample(3, size=96)
    assert s.image.shape == (96, 96, 3) and s.image.dtype == np.uint8
    assert s.sketch.shape == (96, 96) and s.sketch.dtype == np.uint8
    assert np.median(s.sketch) == 255 and s.sketch.min() < 64
    assert s.sketch_caption == SKETCH_PREFIX + s.caption


def _who(s) -> str:
    """The caption's phrase for the character, e.g. 'wizard in a red robe'."""
    return world._DESCRIPTIONS[s.scene.character.kind].format(s.scene.character.colour)


@pytest.mark.parametrize("seed", SEEDS)
def test_caption_matches_the_pixels(seed: int) -> None:
    s = sample(seed)
    scene, ch = s.scene, s.scene.character
    assert ch.kind in s.caption and ch.colour in s.caption and scene.pose in s.caption
    assert SETTING_PHRASES[scene.setting] in s.caption
    # The spoken body colour and the unspoken part colours are drawn where the masks say.
    assert np.abs(_median_rgb(s.image, s.masks["body"]) - COLOURS[ch.colour]).max() <= 2
    for part, colour in ch.hidden.items():
        assert part not in s.caption
        assert np.abs(_median_rgb(s.image, s.masks[part]) - COLOURS[colour]).max() <= 2
    # The setting is visible in the sky, the position in the character's bounding box.
    sky = NIGHT if scene.setting == "night" else SKY
    assert np.abs(np.median(s.image[0], axis=0) - sky).max() <= 2
    # Characters fill most of the height, so a position shifts the figure rather than picking a third.
    centre = (s.bbox[0] + s.bbox[2]) / 2 / s.image.shape[1]
    assert {"left": centre < 0.5, "middle": 0.35 < centre < 0.65, "right": centre > 0.45}[scene.position]
    # Without the colour, the caption names the kind and nothing else changes.
    plain = scene.describe(colour=False)
    assert ch.colour not in plain.split() and ch.kind in plain
    assert plain.replace(ch.kind, "") == s.caption.replace(_who(s), "")


@pytest.mark.parametrize("seed", range(300))
def test_hidden_parts_are_large_enough_to_read_back(seed: int) -> None:
    s = sample(seed)
    assert set(s.hidden_masks) == set(HIDDEN_PARTS[s.scene.character.kind])
    assert all(int(m.sum()) >= 2 * MIN_PIXELS for m in s.hidden_masks.values())
    x0, y0, x1, y1 = s.bbox
    assert s.masks["character"][y0:y1, x0:x1].sum() == s.masks["character"].sum()


def test_every_kind_setting_pose_and_position_occurs() -> None:
    scenes = [sample(seed).scene for seed in range(200)]
    assert {s.character.kind for s in scenes} == set(HIDDEN_PARTS)
    assert {s.setting for s in scenes} == set(SETTING_PHRASES)
    assert {s.pose for s in scenes} == {"standing", "walking", "jumping"}
    assert {s.position for s in scenes} == {"left", "middle", "right"}


def test_story_keeps_the_character_and_varies_the_scenes() -> None:
    story = make_story(5, n_panels=6)
    assert len(story.panels) == 6
    assert all(p.scene.character == story.character for p in story.panels)
    assert all(p.scene.character.hidden == story.character.hidden for p in story.panels)
    assert story.captions[0].startswith("a ") and all(c.startswith("the ") for c in story.captions[1:])
    assert len({(p.scene.setting, p.scene.pose, p.scene.position) for p in story.panels}) > 1
    again = make_story(5, n_panels=6)
    assert again.captions == story.captions
    assert all(np.array_equal(a.image, b.image) for a, b in zip(story.panels, again.panels, strict=True))


def test_stories_draw_hidden_colours_at_random() -> None:
    hidden = {tuple(sorted(make_story(seed).character.hidden.items())) for seed in range(40)}
    assert len(hidden) > 10


def test_invalid_characters_and_stories_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Character("dragon", "red", {"cape": "red", "hat": "red"})
    with pytest.raises(ValueError, match="colour"):
        Character("wizard", "teal", {"cape": "red", "hat": "red"})
    with pytest.raises(ValueError, match="hidden parts"):
        Character("wizard", "red", {"cape": "red"})
    with pytest.raises(ValueError, match="at least one panel"):
        make_story(0, n_panels=0)
    with pytest.raises(ValueError, match="at least 16"):
        render(random_scene(np.random.default_rng(0)), size=8)
