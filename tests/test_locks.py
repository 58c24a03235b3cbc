"""One writer at a time: story edits re-read under the story's lock, libraries and output folders
refuse a second writer with a message naming the holder, and a killed holder never blocks the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import sketchstory.story
from conftest import draw_figure, write_story
from sketchstory.cli import main
from sketchstory.library.index import Meta
from sketchstory.library.store import Library
from sketchstory.locks import BusyError, exclusive
from sketchstory.pipeline import stage1
from sketchstory.pipeline.stage1 import Candidate
from sketchstory.story import load_story, story_lock

SRC = str(Path(sketchstory.story.__file__).parents[1])


def holding(code: str) -> subprocess.Popen:
    """A Python process that runs ``code`` (which takes a lock), says "held", and sleeps."""
    script = f"import sys, time\n{code}\n    print('held', flush=True)\n    time.sleep(600)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_sketch_rereads_the_story_so_an_insert_made_meanwhile_is_kept(tmp_path, monkeypatch, capsys) -> None:
    """`sketch` writes back after each panel; `story insert` runs between two panels."""
    path = write_story(tmp_path / "s", 2, sketches=False)

    def fake_stage1(story, folders, model, options, on_panel):
        for n, folder in folders.items():
            folder.mkdir(parents=True)
            cand = Candidate(n, 0, 1, draw_figure(folder / "cand_00.png", 64, 0.4), blank=False)
            on_panel(n, [cand])
            if n == 0:  # another command edits the story while stage 1 draws panel 1
                assert main(["story", "insert", str(path), "0", "a dragon lands"]) == 0

    monkeypatch.setattr(stage1, "sketch_story", fake_stage1)
    assert main(["sketch", str(path), "-k", "1", "-q"]) == 0
    story = load_story(path)
    assert [p.prompt for p in story.panels] == ["a dragon lands", "a young wizard stands in a forest",
                                                "the wizard finds a blue hat"]
    assert story.panels[0].sketch is None
    assert [p.sketch for p in story.panels[1:]] == ["candidates/panel_00/cand_00.png", "candidates/panel_01/cand_00.png"]
    assert "panel 1 (now panel 2)" in capsys.readouterr().out


def test_a_story_edit_waits_for_the_lock_then_says_who_holds_it(tmp_path, monkeypatch, capsys) -> None:
    path = write_story(tmp_path / "s", 2)
    before = path.read_bytes()
    monkeypatch.setattr(sketchstory.story, "STORY_LOCK_WAIT_S", 0.2)
    with story_lock(path):  # another editor, in the middle of its edit
        assert main(["story", "delete", str(path), "1"]) == 2
    err = capsys.readouterr().err
    assert "is in use by another sketchstory process" in err and "try again" in err and "Traceback" not in err
    assert path.read_bytes() == before
    assert main(["story", "delete", str(path), "1"]) == 0  # released: the edit goes through


def test_the_loser_of_two_library_writers_is_told_which_process_holds_it(tmp_path, capsys) -> None:
    lib = tmp_path / "lib"
    proc = holding(f"from sketchstory.library.store import Library\nwith Library.writer({str(lib)!r}):")
    try:
        (tmp_path / "drawings").mkdir()
        draw_figure(tmp_path / "drawings" / "a.png", 64, 0.5)
        assert main(["library", "import", str(tmp_path / "drawings"), "--library", str(lib)]) == 2
        err = capsys.readouterr().err
        assert f"the sketch library at {lib} is in use by another sketchstory process (pid {proc.pid})" in err
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_left_by_a_killed_writer_does_not_block_the_next(tmp_path) -> None:
    lib = tmp_path / "lib"
    proc = holding(f"from sketchstory.library.store import Library\nwith Library.writer({str(lib)!r}):")
    proc.send_signal(signal.SIGKILL)  # kill -9: no cleanup runs; the lock file stays, naming a dead pid
    proc.wait()
    assert (lib / ".writer.lock").read_text().split()[0] == str(proc.pid)
    with Library.writer(lib) as library, library.index.db:
        library.add(library.normalise(Image.open(draw_figure(tmp_path / "a.png", 64, 0.5))), Meta("user", "a figure"))
    assert (lib / ".writer.lock").read_text().split()[0] == str(os.getpid())


def test_a_second_generate_into_a_folder_in_use_by_another_process_exits_2(story_file, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    marker = out / ".sketchstory-output"
    proc = holding(f"from sketchstory.locks import exclusive\nwith exclusive({str(marker)!r}, 'x', 'y'):")
    try:
        start = time.monotonic()
        assert main(["generate", str(story_file), "-o", str(out), "-q"]) == 2
        assert time.monotonic() - start < 30  # refused at once, not after a model load and a render
        assert f"is in use by another sketchstory process (pid {proc.pid})" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    assert main(["generate", str(story_file), "-o", str(out), "-q"]) == 0  # the holder died: the folder is free


def test_exclusive_raises_busy_with_the_advice(tmp_path) -> None:
    with exclusive(tmp_path / "lock", "the thing", "wait"):
        with pytest.raises(BusyError, match=r"the thing is in use by another sketchstory process \(pid \d+\): wait"):
            with exclusive(tmp_path / "lock", "the thing", "wait"):
                pass
