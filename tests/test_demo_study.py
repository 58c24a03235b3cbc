"""The MAGA consistency study runs end to end on the bundled demo model."""

from __future__ import annotations

import numpy as np
import pytest

from sketchstory.demo.study import (
    CONFIGS,
    DESIGNS,
    design_story,
    paired_difference,
    run_study,
    table,
    without_and_with_maga,
)
from sketchstory.models import DEMO_DIR, load, resolve_spec


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason="demo weights not present")
def test_study_scores_each_configuration() -> None:
    configs = {k: CONFIGS[k] for k in list(CONFIGS)[:2]}
    study = run_study(load(resolve_spec("demo")), "story", 1, 3, 1_000_000, configs, log=lambda *_: None)
    for result in study["results"].values():
        assert len(result["score"]) == 1 and 0.0 <= result["score"][0] <= 1.0
        assert result["unspoken_de"][0] >= 0.0 and 0.0 <= result["f1"][0] <= 1.0 and result["spoken"][0] in (0.0, 1.0)
    assert "| no MAGA |" in table(study) and "(+" in table(study) or "(-" in table(study)


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason="demo weights not present")
def test_the_figure_renders_its_second_row_with_maga(tmp_path) -> None:
    """The rows differ only by MAGA: panel 0 (empty memory) is the same in both, panel 1 is not.

    (The first row's "MAGA off" once leaked into the second, so both rows were without MAGA.)
    """
    from conftest import write_story

    story = write_story(tmp_path / "s", 2, model="demo", width=64, height=64, steps=4,
                        maga={"start_layer": 0, "start_step": 0})
    (off0, off1), (on0, on1) = without_and_with_maga(load(resolve_spec("demo")), story)
    assert np.array_equal(np.asarray(off0), np.asarray(on0))
    assert np.abs(np.asarray(off1, float) - np.asarray(on1, float)).mean() > 0.5


@pytest.mark.parametrize("design", DESIGNS)
def test_designs_vary_what_they_say(design: str) -> None:
    story, prompts = design_story(design, 1_000_000, 3)
    colour = story.character.colour
    assert all(colour not in p.split() for p in prompts[1:])  # panels 1.. never say the body colour
    assert (colour in prompts[0].split()) == (design == "story")
    sketches = [p.sketch for p in story.panels]
    assert all((s == sketches[0]).all() for s in sketches) == (design == "same")
    settings = {p.scene.setting for p in story.panels}
    assert len(settings) == 1 or design == "story"


def test_paired_difference_interval() -> None:
    same = [0.0, 0.5, 1.0, 0.5]
    assert paired_difference(same, same) == (0.0, 0.0, 0.0)
    d, lo, hi = paired_difference([1.0, 1.0, 0.5, 1.0], [0.0, 0.5, 0.0, 0.5])
    assert d == 0.625 and 0 < lo <= d <= hi <= 1.0
    d, lo, hi = paired_difference([1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0])
    assert d == 0.0 and lo < 0 < hi


def test_a_placed_world_story_routes_its_character_by_the_drawn_box(tmp_path) -> None:
    from sketchstory.demo.stories import write_story_folder
    from sketchstory.pipeline.regions import routed
    from sketchstory.story import load_story

    world_story, prompts = design_story("story", 1_000_000, 3)
    story = load_story(write_story_folder(tmp_path, world_story, title="t", prompts=prompts, placed="box"))
    assert story.version == 2 and routed(story)
    for n, sample in enumerate(world_story.panels):
        (placement,) = story.placements(n)
        x0, y0, x1, y1 = sample.bbox
        assert placement.name == world_story.character.kind and placement.box == (x0 / 64, y0 / 64, x1 / 64, y1 / 64)
        assert story.panels[n].setting == sample.scene.setting
    unplaced = load_story(write_story_folder(tmp_path / "v1", world_story, title="t", prompts=prompts))
    assert unplaced.version == 1 and not routed(unplaced)


def test_every_study_story_starts_from_its_own_noise(tmp_path) -> None:
    """One seed pair for every story made the study measure that pair's noise as much as MAGA."""
    from sketchstory.demo.stories import write_story_folder
    from sketchstory.demo.study import first_panel_seed
    from sketchstory.story import load_story

    seeds = []
    for k in range(3):
        world_story, prompts = design_story("diffsk", 1_000_000 + k, 2)
        path = write_story_folder(tmp_path / str(k), world_story, title="t", prompts=prompts,
                                  first_seed=first_panel_seed(1_000_000 + k))
        story = load_story(path)
        seeds += [story.panel_seed(0), story.panel_seed(1)]
    assert len(set(seeds)) == len(seeds)
