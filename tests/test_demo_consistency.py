"""The hidden-attribute consistency measure on hand-made panel sets with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sketchstory.demo.consistency import (
    DEFAULT_THRESHOLD,
    hidden_consistency,
    part_colour,
)
from sketchstory.demo.world import (
    COLOURS,
    Character,
    Story,
    make_story,
    render,
    with_character,
)


def _recoloured(story: Story, panels: set[int]) -> list[np.ndarray]:
    """The story's images with panels in ``panels`` redrawn with every hidden part in other colours."""
    ch = story.character
    other = Character(ch.kind, ch.colour, {part: _another(c) for part, c in ch.hidden.items()})
    return [render(with_character(p.scene, other)).image if i in panels else p.image
            for i, p in enumerate(story.panels)]


def _another(colour: str) -> str:
    names = list(COLOURS)
    return names[(names.index(colour) + 1) % len(names)]


@pytest.mark.parametrize("seed", range(8))
def test_the_drawn_story_is_fully_consistent(seed: int) -> None:
    story = make_story(seed, n_panels=4)
    result = hidden_consistency([p.image for p in story.panels], [p.hidden_masks for p in story.panels])
    assert result.score == 1.0 and all(result.consistent)
    assert all(d < 1.0 for ds in result.distances for d in ds.values())


def test_blur_keeps_a_consistent_story_consistent() -> None:
    story = make_story(1, n_panels=4)
    blurred = [cv2.GaussianBlur(p.image, (3, 3), 0) for p in story.panels]
    assert hidden_consistency(blurred, [p.hidden_masks for p in story.panels]).score == 1.0


@pytest.mark.parametrize(("changed", "score"), [({1, 2, 3}, 0.0), ({2}, 2 / 3), ({1, 3}, 1 / 3)])
def test_changed_hidden_colours_lower_the_score(changed: set[int], score: float) -> None:
    story = make_story(3, n_panels=4)
    result = hidden_consistency(_recoloured(story, changed), [p.hidden_masks for p in story.panels])
    assert result.score == pytest.approx(score)
    assert [not c for c in result.consistent] == [i in changed for i in (1, 2, 3)]


def test_palette_colours_are_further_apart_than_twice_the_threshold() -> None:
    labs = {name: part_colour(np.full((4, 4, 3), rgb, np.uint8), np.ones((4, 4), bool)) for name, rgb in COLOURS.items()}
    names = list(labs)
    gaps = [np.linalg.norm(labs[a] - labs[b]) for i, a in enumerate(names) for b in names[i + 1:]]
    assert min(gaps) > 2 * DEFAULT_THRESHOLD


def test_bad_inputs_are_refused_with_a_reason() -> None:
    story = make_story(0, n_panels=2)
    images, masks = [p.image for p in story.panels], [p.hidden_masks for p in story.panels]
    with pytest.raises(ValueError, match="at least two panels"):
        hidden_consistency(images[:1], masks[:1])
    with pytest.raises(ValueError, match="mask sets"):
        hidden_consistency(images, masks[:1])
    with pytest.raises(ValueError, match="parts"):
        hidden_consistency(images, [masks[0], {"elsewhere": next(iter(masks[1].values()))}])
    with pytest.raises(ValueError, match="pixels"):
        part_colour(images[0], np.zeros(images[0].shape[:2], bool))
    with pytest.raises(ValueError, match="RGB"):
        part_colour(images[0][..., 0], masks[0][next(iter(masks[0]))])
