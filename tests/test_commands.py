"""The ``sketch`` and ``story`` subcommands, through the CLI's own error handling and exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import draw_figure, write_story
from PIL import Image

from sketchstory.cli import run
from sketchstory.commands import sketch, story
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.provenance import read_png_meta
from sketchstory.story import load_story


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sketchstory")
    sub = parser.add_subparsers(dest="command", required=True)
    sketch.register(sub)
    story.register(sub)
    args = parser.parse_args([str(a) for a in argv])
    return run(args.func, args)


def _panels(path: Path) -> list[dict]:
    return json.loads(path.read_text())["panels"]


def test_sketch_writes_candidates_and_a_story_that_generates(tmp_path: Path, capsys) -> None:
    path = write_story(tmp_path / "s", 3, sketches=False, steps=2)
    assert main(["sketch", path, "-k", "2", "-q"]) == 0
    for n in range(3):
        folder = tmp_path / "s" / "candidates" / f"panel_{n:02d}"
        assert sorted(p.name for p in folder.iterdir()) == ["cand_00.png", "cand_01.png"]
        assert read_png_meta(folder / "cand_00.png")["panel_seed"] == 10 + n
    written = load_story(path)  # sketch files exist, paths inside the folder
    assert [p.sketch for p in written.panels] == [f"candidates/panel_{n:02d}/cand_00.png" for n in range(3)]
    report = generate(written, path.parent, tmp_path / "out", RunOptions(progress=False))
    assert report.rendered == [0, 1, 2]
    assert (tmp_path / "out" / "conditions" / "panel_01_canny.png").exists()  # the sketch reached stage 2
    assert main(["story", "choose", path, "1", "1"]) == 0
    assert _panels(path)[1]["sketch"] == "candidates/panel_01/cand_01.png"


def test_sketch_keeps_user_sketches_unless_overwrite(tmp_path: Path, capsys) -> None:
    path = write_story(tmp_path / "s", 3)  # panels 0 and 1 have sketches, panel 2 none
    assert main(["sketch", path, "-k", "1", "-q"]) == 0
    assert "panel(s) 0,1 already have a sketch; kept" in capsys.readouterr().out
    assert [p.get("sketch") for p in _panels(path)] == ["sketches/00.png", "sketches/01.png",
                                                       "candidates/panel_02/cand_00.png"]
    assert main(["sketch", path, "-k", "1", "-q", "--panels", "0", "--overwrite"]) == 0
    assert _panels(path)[0]["sketch"] == "candidates/panel_00/cand_00.png"
    assert (tmp_path / "s" / "sketches" / "00.png").exists()
    # A rerun never overwrites earlier candidates (a panel may use one, or an edit of one).
    assert main(["sketch", path, "-k", "2", "-q", "--panels", "2", "--overwrite"]) == 0
    assert _panels(path)[2]["sketch"] == "candidates/panel_02-2/cand_00.png"
    assert (tmp_path / "s" / "candidates" / "panel_02" / "cand_00.png").exists()
    assert main(["story", "choose", path, "2", "1"]) == 0
    assert _panels(path)[2]["sketch"] == "candidates/panel_02-2/cand_01.png"


def test_sketch_into_a_folder_outside_the_story_copies_the_choice_in(tmp_path: Path) -> None:
    path = write_story(tmp_path / "s", 1, sketches=False)
    assert main(["sketch", path, "-k", "1", "-q", "-o", tmp_path / "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / "panel_00" / "cand_00.png").exists()
    assert _panels(path)[0]["sketch"] == "sketches/panel_00_cand_00.png"
    load_story(path)


def test_sketch_errors_map_to_exit_codes(tmp_path: Path, capsys, monkeypatch) -> None:
    path = write_story(tmp_path / "s", 2, sketches=False)
    assert main(["sketch", path, "--panels", "5"]) == 2
    assert "the story has panels 0..1" in capsys.readouterr().err
    assert main(["sketch", path, "--template", "no placeholder"]) == 2
    assert main(["sketch", path, "--lines", "canny"]) == 2
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["sketch", path, "--model", "sdxl"]) == 3
    assert "huggingface-cli download stabilityai/stable-diffusion-xl-base-1.0" in capsys.readouterr().err
    assert main(["sketch", path, "--model", tmp_path / "missing"]) == 3
    assert "sketch" not in _panels(path)[0]


def test_story_actions_edit_sketches_and_panels(tmp_path: Path, capsys) -> None:
    path = write_story(tmp_path / "s", 3)
    folder = path.parent
    drawing = draw_figure(tmp_path / "drawing.png", 200, 0.5)
    assert main(["story", "import-sketch", path, "2", drawing]) == 0
    assert _panels(path)[2]["sketch"] == "sketches/drawing.png"
    assert Image.open(folder / "sketches" / "drawing.png").size == (32, 32)
    steps = [["flip", path, "0"], ["flip", path, "0", "--vertical"], ["erase", path, "0", "0,0,8,8"],
             ["thicken", path, "0", "-1"], ["move", path, "0", "--dx", "3", "--scale", "0.8"],
             ["crop", path, "0", "10,10,50,50"]]
    for n, argv in enumerate(steps, start=1):
        assert main(["story", *argv]) == 0
        assert _panels(path)[0]["sketch"] == f"sketches/00_edit{n}.png"
    original = np.asarray(Image.open(folder / "sketches" / "00.png"))
    assert np.array_equal(np.asarray(Image.open(folder / "sketches" / "00_edit1.png")), original[:, ::-1])
    assert main(["story", "insert", path, "1", "a new panel", "--caption", "new", "--sketch", drawing]) == 0
    doc = _panels(path)
    assert [p["prompt"] for p in doc][1] == "a new panel" and doc[1]["sketch"] == "sketches/drawing-2.png"
    assert main(["story", "reorder", path, "3,2,1,0"]) == 0
    assert main(["story", "move-panel", path, "0", "3"]) == 0
    assert main(["story", "delete", path, "0"]) == 0
    doc = _panels(path)
    assert [(p["prompt"], p["sketch"], p["seed"]) for p in doc] == [
        ("a new panel", "sketches/drawing-2.png", 13),
        ("a young wizard stands in a forest", "sketches/00_edit6.png", 10),
        ("the wizard meets a creature", "sketches/drawing.png", 12),
    ]
    assert main(["story", "list", path]) == 0
    assert "a new panel" in capsys.readouterr().out
    load_story(path)


def test_story_action_errors_are_clear(tmp_path: Path, capsys) -> None:
    path = write_story(tmp_path / "s", 1)
    assert main(["story", "delete", path, "0"]) == 2
    assert "only panel" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    assert main(["story", "import-sketch", path, "0", blank]) == 2
    assert "no lines" in capsys.readouterr().err
    assert main(["story", "flip", path, "4"]) == 2
    assert "no such panel" in capsys.readouterr().err
    assert main(["story", "choose", path, "0", "2"]) == 2
    assert "not a stage-1 candidate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["story", "erase", path, "0", "1,2,3"])
    assert _panels(path)[0]["sketch"] == "sketches/00.png"
