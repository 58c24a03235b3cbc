"""The ``auto`` execution mode: chunk sizes from the free memory, the same pixels as batched, per-panel saves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_story
import sketchstory.pipeline.runner as runner
from sketchstory.attention.budget import LayerShape
from sketchstory.pipeline.chunking import MAX_CHUNK, activation_bytes, plan_chunk
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story

MiB = 2**20


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_plan_takes_the_largest_chunk_that_fits_half_the_free_memory() -> None:
    # 100 MiB a panel, 10 MiB of memory bank a panel, 4 retained: a chunk of k needs 100k + 10 min(4 + k, 16) MiB.
    plan = lambda free, limit=0: plan_chunk(16, 100 * MiB, 10 * MiB, 4, free, limit)  # noqa: E731
    assert plan(2 * 1000 * MiB).size == MAX_CHUNK  # 8 need 920 MiB of 1000 usable
    assert plan(2 * 500 * MiB).size == 4  # 4 need 480, 5 would need 590
    assert plan(2 * 500 * MiB, limit=3).size == 3
    small = plan(2 * 200 * MiB)  # 2 need 260 > 200
    assert small.size == 1 and small.reason.startswith("sequential: a chunk of 2 panels needs about 260 MiB")
    assert plan(None).size == 1 and "unknown" in plan(None).reason
    assert plan_chunk(1, MiB, 0, 4, 10**12).size == 1


def test_activation_estimate_grows_with_tokens_memory_panels_and_guidance() -> None:
    shapes = [LayerShape(256, 32), LayerShape(64, 64)]
    base = activation_bytes(shapes, 1, 0, None, 1, 4)
    assert base == 4 * (3 * (256 * 32 + 64 * 64) + 18 * 256 * 32)
    assert activation_bytes(shapes, 1, 0, None, 2, 4) == 2 * base
    assert activation_bytes(shapes, 0, 3, None, 1, 4) > activation_bytes(shapes, 0, 3, 16, 1, 4) > base
    # Character routing adds one (tokens x (tokens + memory tokens)) mask at the widest MAGA layer.
    assert activation_bytes(shapes, 0, 3, None, 2, 4, routed=True) - activation_bytes(shapes, 0, 3, None, 2, 4) == (
        4 * max(s.tokens * 4 * s.tokens for s in shapes))


@pytest.mark.parametrize(("free", "size"), [(10 * MiB, 1), (64 * 2**30, 4)])
def test_auto_picks_sequential_when_memory_is_tiny_and_a_chunk_otherwise(tiny, tmp_path: Path, monkeypatch,
                                                                         free: int, size: int) -> None:
    monkeypatch.setattr(runner, "available_bytes", lambda device: free)
    path = write_story(tmp_path / "s", 4)
    story = load_story(path)
    assert story.settings.mode == "auto"  # the default
    steps: list[tuple[int, ...]] = []
    generate(story, path.parent, tmp_path / "out", RunOptions(progress=False, on_step=lambda p, d, t: steps.append(p)),
             tiny)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["mode"] == "auto" and info["chunk_size"] == size
    assert info["chunk_reason"].startswith("sequential" if size == 1 else f"chunks of {size}")
    assert {len(p) for p in steps} == {size}  # each UNet call denoised that many panels


def test_auto_gives_the_pixels_of_batched(tiny, tmp_path: Path) -> None:
    path = write_story(tmp_path / "s", 4)
    for mode in ("auto", "batched"):
        story = load_story(path).with_settings({"mode": mode}, "test")
        generate(story, path.parent, tmp_path / mode, RunOptions(progress=False), tiny)
    assert json.loads((tmp_path / "auto" / "run.json").read_text())["chunk_size"] > 1
    for n in range(4):
        name = f"panels/panel_{n:02d}.png"
        assert (pixels(tmp_path / "auto" / name) == pixels(tmp_path / "batched" / name)).all()


def test_an_interrupted_chunk_keeps_each_panel_decoded_before(tiny, tmp_path: Path) -> None:
    path = write_story(tmp_path / "s", 4)
    story = load_story(path)
    saved: list[int] = []

    def stop_after_two(n: int) -> None:
        saved.append(n)
        if len(saved) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        generate(story, path.parent, out, RunOptions(progress=False, on_panel=stop_after_two), tiny)
    assert sorted(p.name for p in (out / "panels").iterdir()) == ["panel_00.png", "panel_01.png"]
    report = generate(story, path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.reused == [0, 1] and report.rendered == [2, 3]


@pytest.mark.parametrize("mode", ["auto", "batched"])
def test_resume_with_nothing_left_to_render(tiny, tmp_path: Path, mode: str) -> None:
    path = write_story(tmp_path / "s", 2, mode=mode)
    story = load_story(path)
    generate(story, path.parent, tmp_path / "out", RunOptions(progress=False), tiny)
    report = generate(story, path.parent, tmp_path / "out", RunOptions(resume=True, progress=False), tiny)
    assert report.rendered == [] and report.reused == [0, 1]


@pytest.mark.parametrize(("free", "warned"), [(1000, True), (64 * 2**30, False)])
def test_a_run_whose_estimate_exceeds_the_free_memory_is_warned_about_before_it_renders(
        tiny, tmp_path: Path, monkeypatch, caplog, free: int, warned: bool) -> None:
    monkeypatch.setattr(runner, "available_bytes", lambda device: free)
    path = write_story(tmp_path / "s", 3, steps=2, mode="batched")
    said_before: list[int] = []  # warnings logged by the time each panel is saved
    with caplog.at_level("WARNING", logger=runner.log.name):
        report = generate(load_story(path), path.parent, tmp_path / "out", RunOptions(
            progress=False, on_panel=lambda n: said_before.append(sum("MiB free" in r.getMessage()
                                                                      for r in caplog.records))), tiny)
    said = [w for w in report.warnings if "MiB free" in w]
    assert len(said) == int(warned) and said_before == [int(warned)] * 3  # before the render, not an error
    if warned:
        assert "3 panel(s) at a time at 32x32" in said[0] and "more than the 0 MiB free on cpu" in said[0]
        assert all(advice in said[0] for advice in ("--size", "--mode sequential", "--token-budget"))
        assert "\n" not in said[0]
