"""Character-routed MAGA on the tiny models: it reduces to plain MAGA, its modes agree, and a
character's memory reaches only that character's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchstory.attention.policy import parse_policy
from sketchstory.attention.routing import Routing
from sketchstory.attention.tokens import layer_grid
from sketchstory.attention.tracks import BACKGROUND, CHARACTER, character_tracks
from sketchstory.pipeline.regions import box_region, panel_regions
from sketchstory.pipeline.stage2 import denoise
from sketchstory.story import parse_story
from test_maga import SAMPLING, TOL, make_jobs, new_run, sequential

LATENT = (16, 16)
LEFT, RIGHT, WHOLE = (0.0, 0.1, 0.45, 0.9), (0.55, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0)


@pytest.fixture(autouse=True)
def restore(tiny):
    before = dict(tiny.unet.attn_processors)
    yield
    tiny.unet.set_attn_processor(before)


def routing(memory: str, cast: list[dict[str, tuple[float, ...]]], settings: list[str | None] | None) -> Routing:
    """Routing of a story whose panel n shows ``cast[n]`` (name -> box) in ``settings[n]``."""
    tracks = character_tracks(parse_policy(memory), [list(c) for c in cast], settings)
    index = {key: t for t, key in enumerate(tracks.keys)}
    regions = {}
    for n, boxes in enumerate(cast):
        own = {index[(CHARACTER, name)]: torch.from_numpy(box_region(box, LATENT)) for name, box in boxes.items()}
        if settings is not None:
            covered = np.logical_or.reduce([box_region(b, LATENT) for b in boxes.values()] or [np.zeros(LATENT, bool)])
            own[index[(BACKGROUND, settings[n])]] = torch.from_numpy(~covered)
        regions[n] = own
    return Routing(tracks, regions)


def routed_run(tiny, conds, memory, cast, settings, **kw):
    run = new_run(tiny, conds, memory=memory, **kw)
    run.routing = routing(memory, cast, settings)
    return run


def test_a_character_reads_its_own_appearances_along_its_track():
    # Panel 7 brings back A, last seen in panel 0: per character, its first appearance is its anchor.
    cast = [["A"]] + [["B"]] * 6 + [["A"]]
    tracks = character_tracks(parse_policy("anchors:0+window:1"), cast, None)
    assert tracks.sources(7) == (0,) and tracks.sources(6) == (1, 5)
    assert parse_policy("anchors:0+window:1").sources(7) == (0, 6)  # what plain MAGA would read
    assert tracks.retained(8) == 4  # A's 0 is kept till panel 7, beside B's anchor, B's latest and the new one
    with_backgrounds = character_tracks(parse_policy("anchors:0+window:1"), cast, ["x"] * 4 + ["y"] * 4)
    assert with_backgrounds.sources(7) == (0, 4, 6)  # A's anchor; setting y's anchor 4 and latest 6
    # A reference picture (memory panel -1) comes first on A's track: anchors:0 is then the reference.
    referenced = character_tracks(parse_policy("anchors:0+window:1"), cast, None, {"A": -1})
    assert referenced.sources(0) == (-1,) and referenced.sources(7) == (-1, 0)
    assert referenced.retained(8) == 5  # the reference is held from the start, till panel 7
    decayed = character_tracks(parse_policy("decay:0.5"), cast, None)
    # Panel 6 is B's sixth appearance: B's first is 4 appearances old, as panel 1 would be from panel 6.
    routes = decayed.routes(6)
    assert [r.source for r in routes] == [1, 2, 3, 4, 5]
    assert [r.log_weight for r in routes] == pytest.approx([np.log(0.5) * age for age in (4, 3, 2, 1, 0)])
    assert [r.source for r in decayed.routes(7)] == [0]  # A's age counts A's appearances


@pytest.mark.parametrize("kw", [{"memory": "all"}, {"memory": "anchors:0+window:1", "token_budget": 7},
                                {"memory": "decay:0.5", "strength": 2.0}, {"memory": "all", "memory_guidance": 1.0}])
def test_one_character_on_the_whole_panel_is_plain_maga(tiny, kw):
    jobs, conds = make_jobs(tiny)
    plain = sequential(tiny, jobs, new_run(tiny, conds, **kw))
    memory = kw.pop("memory")
    run = routed_run(tiny, conds, memory, [{"A": WHOLE}] * 4, [None] * 4, **kw)
    torch.testing.assert_close(sequential(tiny, jobs, run), plain, rtol=0, atol=TOL)
    assert run.calls > 0


CAST = [{"A": LEFT, "B": RIGHT}, {"B": RIGHT}, {"A": RIGHT}, {"A": LEFT, "B": RIGHT}]


@pytest.mark.parametrize("kw", [{}, {"token_budget": 9, "strength": 2.0}, {"memory_guidance": 0.5}])
def test_routed_sequential_equals_batched_and_differs_from_plain(tiny, kw):
    jobs, conds = make_jobs(tiny)
    settings = ["forest", "forest", "castle", "forest"]
    seq = sequential(tiny, jobs, routed_run(tiny, conds, "anchors:0+window:1", CAST, settings, **kw))
    bat = denoise(tiny, jobs, SAMPLING, routed_run(tiny, conds, "anchors:0+window:1", CAST, settings, **kw))
    torch.testing.assert_close(seq, bat, rtol=0, atol=TOL)
    if not kw:  # chunks: batches that read the memory of earlier ones
        chunk_run = routed_run(tiny, conds, "anchors:0+window:1", CAST, settings)
        first = denoise(tiny, jobs[:2], SAMPLING, chunk_run, write=frozenset({0, 1}))
        torch.testing.assert_close(torch.cat([first, denoise(tiny, jobs[2:], SAMPLING, chunk_run)]), seq,
                                   rtol=0, atol=TOL)
    plain = sequential(tiny, jobs, new_run(tiny, conds, memory="anchors:0+window:1", **kw))
    torch.testing.assert_close(seq[0], plain[0], rtol=0, atol=TOL)
    assert (seq[1:] - plain[1:]).abs().amax() > 50 * TOL  # routing changes what the later panels read


def test_a_character_absent_from_a_panel_leaves_it_unchanged_by_its_memory(tiny):
    jobs, conds = make_jobs(tiny, 3)
    cast, settings = [{"A": LEFT, "B": RIGHT}, {"B": RIGHT}, {"A": LEFT}], ["forest"] * 3
    clean = sequential(tiny, jobs, routed_run(tiny, conds, "all", cast, settings))
    run = routed_run(tiny, conds, "all", cast, settings)
    right = run.memory.get
    a_track = run.routing.tracks.keys.index((CHARACTER, "A"))

    def scrambled(panel, layer, step):  # panel 0's keys and values on A's tokens only, replaced by noise
        k, v = right(panel, layer, step)
        if panel != 0:
            return k, v
        labels = run.routing.labels(0, layer_grid(k.shape[2], LATENT))
        only_a = labels[:, a_track] & (labels.sum(dim=1) == 1)
        noise = torch.randn(k.shape, generator=torch.Generator().manual_seed(layer * 100 + step))
        return (torch.where(only_a[None, None, :, None], 5 * noise, k),
                torch.where(only_a[None, None, :, None], 5 * noise, v))

    run.memory.get = scrambled
    out = sequential(tiny, jobs, run)
    torch.testing.assert_close(out[1], clean[1], rtol=0, atol=1e-6)  # B's panel never reads A's tokens
    assert (out[2] - clean[2]).abs().amax() > 50 * TOL  # A's panel does: the test can fail


@pytest.mark.parametrize("kw", [{}, {"token_budget": 9}])
def test_the_mask_is_built_once_per_panel_and_resolution_unless_a_token_budget_picks_tokens(tiny, kw):
    jobs, conds = make_jobs(tiny)
    run = routed_run(tiny, conds, "anchors:0+window:1", CAST, ["forest", "forest", "castle", "forest"], **kw)
    built, build = [], run._routed_mask

    def counted(routing, n, sources, layer, tokens):
        built.append((n, tokens))
        return build(routing, n, sources, layer, tokens)

    run._routed_mask = counted
    sequential(tiny, jobs, run)
    assert {n for n, _ in built} == {1, 2, 3}  # panel 0 reads no memory
    assert (len(built) == len(set(built))) == (not kw)  # a budget's tokens change with layer and step


def _placed_story(box: list[float]):
    doc = {"version": 2, "characters": [{"name": "wizard", "description": "a wizard"}],
           "panels": [{"prompt": "the wizard", "characters": [{"name": "wizard", "box": box}]}]}
    return parse_story(doc)


def test_a_box_is_narrowed_to_the_drawn_subject_inside_it_and_kept_whole_without_one() -> None:
    story = _placed_story([0.0, 0.0, 0.5, 1.0])  # the left half of a 4x4 latent
    box = box_region((0.0, 0.0, 0.5, 1.0), (4, 4))
    subject = np.zeros((4, 4), bool)
    subject[1:3, 1:3] = True  # drawn: the middle, half of it inside the box
    characters, background = panel_regions(story, 0, subject, {}, (4, 4))
    assert np.array_equal(characters["wizard"], box & subject) and characters["wizard"].sum() == 2
    assert np.array_equal(background, ~(box & subject))  # the box's undrawn scenery is background
    elsewhere = np.zeros((4, 4), bool)
    elsewhere[:, 3] = True  # nothing drawn inside the box: the box stands
    assert np.array_equal(panel_regions(story, 0, elsewhere, {}, (4, 4))[0]["wizard"], box)
    assert np.array_equal(panel_regions(story, 0, None, {}, (4, 4))[0]["wizard"], box)
