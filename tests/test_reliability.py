"""Interrupted runs keep finished work and resume to the same images; outputs are checked early."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_story
from sketchstory.cli import main
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.provenance import read_png_meta
from sketchstory.story import load_story


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


class Interrupt:
    """An on_step hook that raises Ctrl-C once ``at`` steps are done."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, panels: tuple[int, ...], done: int, total: int) -> None:
        if done >= self.at:
            raise KeyboardInterrupt


def test_interrupt_keeps_finished_panels_and_resume_matches(tiny, tmp_path: Path) -> None:
    path = write_story(tmp_path / "s", 4)
    story = load_story(path)
    generate(story, path.parent, tmp_path / "full", RunOptions(progress=False), tiny)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):  # 4 steps a panel: stops inside panel 2
        generate(story, path.parent, out, RunOptions(progress=False, on_step=Interrupt(10)), tiny)
    done = sorted(p.name for p in (out / "panels").iterdir())
    assert done == ["panel_00.png", "panel_01.png"]
    assert all(read_png_meta(out / "panels" / d) for d in done)  # complete files, with metadata
    assert not list(out.rglob("*.part*"))
    report = generate(story, path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.reused == [0, 1] and report.rendered == [2, 3]
    for n in range(4):
        name = f"panels/panel_{n:02d}.png"
        assert np.abs(pixels(out / name) - pixels(tmp_path / "full" / name)).max() <= 1


def test_resume_redoes_panels_whose_inputs_changed(tiny, tmp_path: Path) -> None:
    path = write_story(tmp_path / "s", 3)
    out = tmp_path / "out"
    generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    changed = write_story(tmp_path / "s", 3, steps=5)
    report = generate(load_story(changed), changed.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.rendered == [0, 1, 2]


def test_cli_interrupt_exit_code_and_hint(story_file: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import sketchstory.pipeline.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "generate", interrupted)
    assert main(["generate", str(story_file), "-o", str(tmp_path / "o"), "-q"]) == 130
    assert "--resume" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_fails_before_work_as_non_root(story_file: Path, tmp_path: Path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["generate", str(story_file), "-o", str(locked / "out"), "-q"]) == 4


def test_output_path_that_is_a_file_fails_clearly(story_file: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["generate", str(story_file), "-o", str(blocker / "out"), "-q"]) == 4
    assert "not writable" in capsys.readouterr().err
