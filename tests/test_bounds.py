"""Every input is bounded before work starts, the limit named in the message: edit parameters, stage-1
candidates, story files and their text, sizes on the CPU, and batch JSONL folders; and bad input is
never retried."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import write_story
from sketchstory.batch import inputs
from sketchstory.batch.inputs import read_tasks
from sketchstory.batch.pool import LocalPool, Worker, run_with_retries
from sketchstory.cli import main
from sketchstory.panels import edit_sketch
from sketchstory.pipeline import runner
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.pipeline.stage1 import SketchOptions
from sketchstory.sketches import SketchError
from sketchstory.story import load_story


@pytest.mark.parametrize("argv, limit", [
    (["move", "0", "--scale", "1e6"], "give a number from 0.0625 to 16"),
    (["move", "0", "--dx", "99999999"], "give a number from -4096 to 4096"),
    (["thicken", "0", "100000"], "give a number from -64 to 64"),
], ids=["scale", "move", "thicken"])
def test_story_edits_are_bounded_on_the_command_line(argv, limit, tmp_path, capsys) -> None:
    path = write_story(tmp_path / "s", 2)
    before = path.read_bytes()
    with pytest.raises(SystemExit) as raised:
        main(["story", argv[0], str(path), *argv[1:]])
    assert raised.value.code == 2 and limit in capsys.readouterr().err
    assert path.read_bytes() == before


@pytest.mark.parametrize("op, params, limit", [
    ("move", {"scale": 1e6}, "scale must be from 0.0625 to 16"),
    ("move", {"dx": 10**9}, "move at most 4096 pixels"),
    ("thickness", {"pixels": 100_000}, "give -64 to 64 px"),
], ids=["scale", "move", "thicken"])
def test_story_edits_are_bounded_in_the_api_the_page_uses(op, params, limit, tmp_path) -> None:
    path = write_story(tmp_path / "s", 2)
    start = time.monotonic()
    with pytest.raises(SketchError, match=limit):
        edit_sketch(load_story(path), path.parent, 0, op, **params)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("argv, limit", [
    (["library", "list", "--limit", "-1"], "-1: give a number from 1 to 1000000"),
    (["library", "build", "prompts.json", "--candidates", "100000"], "100000: give a number from 1 to 1000"),
    (["batch", "stories", "-o", "out", "--retries", "1000"], "1000: give a number from 0 to 10"),
    (["bench", "--size", "100000"], "100000: give a number from 8 to 4096"),
    (["ui", "--port", "99999"], "99999: give a number from 1 to 65535"),
], ids=["list --limit", "build --candidates", "batch --retries", "bench --size", "ui --port"])
def test_numeric_options_name_their_limits(argv, limit, capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2 and limit in capsys.readouterr().err


def test_stage1_candidates_are_bounded(tmp_path, capsys) -> None:
    path = write_story(tmp_path / "s", 2, sketches=False)
    with pytest.raises(SystemExit) as raised:
        main(["sketch", str(path), "-k", "100000"])
    assert raised.value.code == 2 and "100000: give a number from 1 to 64" in capsys.readouterr().err
    with pytest.raises(ValueError, match="ask for 1 to 64 candidates per panel"):
        SketchOptions(candidates=100_000)
    with pytest.raises(ValueError, match="at most 4096"):
        SketchOptions(size=(8192, 8192))


def test_check_of_an_endless_file_stops_at_the_limit(capsys) -> None:
    start = time.monotonic()
    assert main(["check", "/dev/zero"]) == 2
    assert "larger than 16 MiB, the limit for a story file" in capsys.readouterr().err
    assert time.monotonic() - start < 30


def test_a_size_that_takes_the_cpu_very_long_is_warned_about_before_the_work(tiny, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "CPU_SLOW_PIXELS", 16 * 16)
    path = write_story(tmp_path / "s", 1, steps=2)
    report = generate(load_story(path), path.parent, tmp_path / "out", RunOptions(progress=False), tiny)
    assert any("32x32 on the CPU" in w and "smaller --size" in w for w in report.warnings), report.warnings


def test_a_jsonl_folder_outside_the_jsonl_files_folder_is_refused_unless_allowed(tmp_path, capsys) -> None:
    doc = json.loads(write_story(tmp_path / "s", 1).read_text())
    doc["panels"][0].pop("sketch")
    jsonl = tmp_path / "batch" / "stories.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text(json.dumps({"name": "root", "folder": "/", "story": doc}) + "\n"
                     + json.dumps({"name": "up", "folder": "..", "story": doc}) + "\n")
    tasks = read_tasks(jsonl)
    assert all(t.story is None and "outside the JSONL file's folder" in t.problem and "--allow-folders-outside"
               in t.problem for t in tasks)
    assert [t.folder for t in read_tasks(jsonl, allow_outside=True)] == [Path("/"), tmp_path]
    assert main(["batch", str(jsonl), "-o", str(tmp_path / "out"), "--workers", "0", "-q"]) == 2
    assert not (tmp_path / "out" / "root").exists()


def test_a_jsonl_file_over_the_limit_is_refused_before_it_is_read_whole(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(inputs, "MAX_JSONL_BYTES", 2**20)
    doc = json.loads(write_story(tmp_path / "s", 1).read_text())
    jsonl = tmp_path / "stories.jsonl"
    line = json.dumps(doc) + "\n"
    jsonl.write_text(line * (2**20 // len(line) + 1))
    assert main(["batch", str(jsonl), "-o", str(tmp_path / "out"), "--workers", "0", "-q"]) == 2
    err = capsys.readouterr().err
    assert "larger than 1 MiB, the limit for a JSONL file" in err and "split it" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, limit", [
    (["batch", "IN", "--workers", "100000000"], "give a number from 0 to 10000"),
    (["batch", "IN", "--workers", "-1"], "give a number from 0 to 10000"),
    (["batch", "IN", "--cpus-per-story", "0"], "give a number from 0.01 to 1024"),
    (["batch", "IN", "--gpus-per-story", "nan"], "give a number from 0 to 16"),
    (["library", "build", "IN", "--cpus-per-worker", "1e9"], "give a number from 0.01 to 1024"),
], ids=["workers", "negative workers", "no cpus", "nan gpus", "library cpus"])
def test_cluster_options_are_bounded_on_the_command_line(argv, limit, tmp_path, capsys) -> None:
    argv = [str(tmp_path) if a == "IN" else a for a in argv]
    with pytest.raises(SystemExit) as raised:
        main([*argv, "-o", str(tmp_path / "out")] if argv[0] == "batch" else argv)
    assert raised.value.code == 2 and limit in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


class Failing(Worker):
    def __init__(self, error: Exception) -> None:
        super().__init__(None)
        self.error = error

    def run(self, item: str) -> None:
        raise self.error


@pytest.mark.parametrize("error, attempts", [(ValueError("panels[0].sketch: leaves the story's folder"), 1),
                                             (OSError(5, "Input/output error"), 3)], ids=["bad input", "io error"])
def test_bad_input_is_not_retried_other_failures_are(error, attempts) -> None:
    [outcome] = run_with_retries(LocalPool(Failing(error), "run"), [(0, "story")], retries=2)
    assert outcome.failure is not None and outcome.attempts == attempts
