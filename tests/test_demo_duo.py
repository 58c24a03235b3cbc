"""The two-character toy world and the metrics of the two-character study, on the world's own pictures."""

from __future__ import annotations

import numpy as np
import pytest

from sketchstory.demo import duo
from sketchstory.demo.consistency import MIN_PIXELS
from sketchstory.demo.stories import write_duo_folder
from sketchstory.demo.study_characters import story_metrics
from sketchstory.demo.world import COLOURS
from sketchstory.story import load_story

SEEDS = range(1_000_000, 1_000_012)


@pytest.mark.parametrize("seed", SEEDS)
def test_pairs_stories_and_boxes(seed: int) -> None:
    story = duo.make_duo_story(seed, 4)
    a, b = story.pair
    assert a.kind != b.kind and duo.apart(a, b)
    assert not set(a.hidden.values()) & set(b.hidden.values())
    presence = [p.who for p in story.panels]
    assert all(len(story.appearances(c)) >= 2 for c in (0, 1))
    assert any(len(w) == 2 for w in presence) and any(len(w) == 1 for w in presence)  # they come and go
    for panel in story.panels:
        for i, c in enumerate(panel.who):
            masks, (x0, y0, x1, y1) = panel.masks[i], panel.boxes[i]
            # The box covers all of the character that shows, and its parts show their own colours.
            assert masks["character"][y0:y1, x0:x1].sum() == masks["character"].sum() > 0
            for part, colour in story.pair[c].hidden.items():
                assert masks[part].sum() >= 2 * MIN_PIXELS
                assert np.abs(np.median(panel.image[masks[part]], axis=0) - COLOURS[colour]).max() <= 2
        if len(panel.who) == 2:
            assert not (panel.masks[0]["character"] & panel.masks[1]["character"]).any()


def test_same_seed_same_story_and_settings_differ() -> None:
    one, again = duo.make_duo_story(1_000_000, 6), duo.make_duo_story(1_000_000, 6)
    assert one.captions == again.captions and one.pair == again.pair
    assert all(np.array_equal(p.image, q.image) and p.boxes == q.boxes for p, q in zip(one.panels, again.panels))
    assert not np.array_equal(one.panels[0].image, duo.make_duo_story(1_000_001, 6).panels[0].image)
    settings = {p.setting for s in SEEDS for p in duo.make_duo_story(s, 4).panels}
    assert len(settings) == 4
    with pytest.raises(ValueError, match="at least 3 panels"):
        duo.make_duo_story(0, 2)


def test_folders_route_by_character_or_share_one_memory(tmp_path) -> None:
    story = duo.make_duo_story(1_000_000, 4)
    portraits = {c: duo.portrait(ch, 1).image for c, ch in enumerate(story.pair)}
    routed = load_story(write_duo_folder(tmp_path / "routed", story, title="t", placed=True, references=portraits))
    shared = load_story(write_duo_folder(tmp_path / "shared", story, title="t", placed=False))
    assert routed.version == 2 and shared.version == 1
    assert [p.prompt for p in routed.panels] == [p.prompt for p in shared.panels] == story.captions
    assert [c.reference for c in routed.characters] == [f"references/{c.kind}.png" for c in story.pair]
    for panel, drawn in zip(routed.panels, story.panels, strict=True):
        assert panel.setting == drawn.setting and len(panel.characters) == len(drawn.who)
        assert all(0 <= v <= 1 for c in panel.characters for v in c.box)


def _swapped(story: duo.DuoStory) -> list[np.ndarray]:
    """The world's pictures with each character's hidden parts painted, after its first panel, in the other's colour."""
    images = []
    for n, panel in enumerate(story.panels):
        image = panel.image.copy()
        for i, c in enumerate(panel.who):
            if n == story.appearances(c)[0]:
                continue
            theirs = next(iter(story.pair[1 - c].hidden.values()))
            for part in story.pair[c].hidden:
                image[panel.masks[i][part]] = COLOURS[theirs]
        images.append(image)
    return images


def test_metrics_on_kept_and_swapped_colours() -> None:
    story = duo.make_duo_story(1_000_003, 4)
    kept = story_metrics([p.image for p in story.panels], story)
    assert kept["mixing"] == 0.0 and kept["own_de"] < 1.0 and kept["ref_de"] < 2.0
    splits = ("own_de_alone", "own_de_together", "own_de_anchor_alone", "own_de_anchor_together")
    assert all(kept[k] is None or kept[k] < 1.0 for k in splits)
    assert kept.get("background_de", 0.0) < 1.0
    swapped = story_metrics(_swapped(story), story)
    assert swapped["mixing"] == 1.0 and swapped["own_de"] > 20.0 and swapped["ref_de"] > kept["ref_de"]
    split = [swapped[k] for k in splits if swapped[k] is not None]
    assert len(split) >= 2 and min(split) > 20.0
