"""Interrupted runs keep finished work and resume to the same images; outputs are checked early."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from badinputs import Inputs, disk_full_after
from conftest import draw_figure, write_story
from sketchstory.cli import main
from sketchstory.outputs import MARKER
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.provenance import read_png_meta
from sketchstory.story import load_story


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


class Interrupt:
    """An on_step hook that raises ``stop`` (Ctrl-C, or a crash) once ``at`` steps are done."""

    def __init__(self, at: int, stop: type[BaseException] = KeyboardInterrupt) -> None:
        self.at, self.stop = at, stop

    def __call__(self, panels: tuple[int, ...], done: int, total: int) -> None:
        if done >= self.at:
            raise self.stop("stopped mid-story")


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError], ids=["ctrl-c", "crash"])
def test_interrupt_keeps_finished_panels_and_resume_matches(tiny, tmp_path: Path, stop) -> None:
    path = write_story(tmp_path / "s", 4, mode="sequential")
    story = load_story(path)
    generate(story, path.parent, tmp_path / "full", RunOptions(progress=False), tiny)
    out = tmp_path / "out"
    with pytest.raises(stop):  # 4 steps a panel: stops inside panel 2
        generate(story, path.parent, out, RunOptions(progress=False, on_step=Interrupt(10, stop)), tiny)
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


def test_resume_redoes_panels_whose_sketch_changed_and_those_that_read_them(tiny, tmp_path: Path) -> None:
    path = write_story(tmp_path / "s", 3)  # memory "all": panel 2 reads panels 0 and 1
    out = tmp_path / "out"
    generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    draw_figure(path.parent / "sketches" / "01.png", 64, 0.7)
    report = generate(load_story(path), path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.reused == [0] and report.rendered == [1, 2]


def test_resume_redoes_a_damaged_panel_file(tiny, tmp_path: Path) -> None:
    """A panel file cut short outside sketchstory (a power cut, a full copy) is rendered again."""
    path = write_story(tmp_path / "s", 3)
    out = tmp_path / "out"
    generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    before = pixels(out / "panels" / "panel_01.png")
    damaged = (out / "panels" / "panel_01.png").read_bytes()
    (out / "panels" / "panel_01.png").write_bytes(damaged[: len(damaged) // 3])
    report = generate(load_story(path), path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.rendered == [1] and report.reused == [0, 2]
    assert np.abs(pixels(out / "panels" / "panel_01.png") - before).max() <= 1


def test_disk_full_mid_story_then_resume_gives_the_uninterrupted_images(tmp_path: Path, capsys, monkeypatch) -> None:
    path = write_story(tmp_path / "s", 3)
    assert main(["generate", str(path), "-o", str(tmp_path / "full"), "-q"]) == 0
    out = tmp_path / "out"
    disk_full_after(3)(monkeypatch, Inputs(path, out))  # panel 0: its two conditions and itself
    assert main(["generate", str(path), "-o", str(out), "-q"]) == 4
    err = capsys.readouterr().err
    assert f"disk full while writing {out}" in err and f"free space in {out} and rerun with --resume" in err
    assert sorted(p.name for p in (out / "panels").iterdir()) == ["panel_00.png"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.name != MARKER]  # no temporary leftovers
    monkeypatch.undo()  # space freed
    assert main(["generate", str(path), "-o", str(out), "-q", "--resume"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert [p["status"] for p in info["panels"]] == ["reused", "rendered", "rendered"]
    for n in range(3):
        name = f"panels/panel_{n:02d}.png"
        assert np.abs(pixels(out / name) - pixels(tmp_path / "full" / name)).max() <= 1


def test_cli_interrupt_exit_code_and_hint(story_file: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import sketchstory.pipeline.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "generate", interrupted)
    assert main(["generate", str(story_file), "-o", str(tmp_path / "o"), "-q"]) == 130
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("error", [MemoryError(), torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")])
def test_cli_out_of_memory_exit_code_and_what_to_lower(error: BaseException, story_file: Path, tmp_path: Path,
                                                       capsys, monkeypatch) -> None:
    import sketchstory.pipeline.runner as runner

    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(runner, "generate", exhausted)
    assert main(["generate", str(story_file), "-o", str(tmp_path / "o"), "-q"]) == 5
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and "--resume" in err and "--size" in err
    assert "Traceback" not in err


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
