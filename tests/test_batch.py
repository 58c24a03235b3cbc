"""``sketchstory batch`` and ``library build`` on a local Ray (2 CPUs) and without Ray.

Batch: generate's layout, retries, resume, the same pixels with and without Ray. Library: the
driver alone writes the index, with no duplicates, and gets what the serial build gets.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_story
from sketchstory.cli import main
from sketchstory.batch import cluster
from sketchstory.batch.stories import run_batch
from sketchstory.batch.cluster import Cluster
from sketchstory.batch.inputs import read_tasks
from sketchstory.batch.pool import Outcome, RayPool, Worker, run_with_retries
from sketchstory.library import Library, load_prompts
from sketchstory.pipeline.library_build import build_library

GOOD = ("castle", "forest", "shore")
RETRIES = 1


def _story(folder: Path, seed: int) -> Path:
    return write_story(folder, 2, steps=2, seed=seed)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _report(out: Path) -> dict:
    return json.loads((out / "batch.json").read_text())


def _by_name(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["stories"]}


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    # Ray lowers its workers' priority (nice 15); on a shared test machine they would wait behind
    # every other process, so they get the tests' own priority here.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_worker_niceness", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def stories(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stories")
    for seed, name in enumerate(GOOD):
        _story(root / name, seed)
    # Its sketch file exists (the story checks out) but is no picture: rendering fails every time.
    _story(root / "broken", 9)
    (root / "broken" / "sketches" / "00.png").write_bytes(b"this is not a PNG")
    return root


@pytest.fixture(scope="module")
def first_run(local_ray, stories, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("out")
    code = main(["batch", str(stories), "-o", str(out), "--retries", str(RETRIES), "-q"])
    return code, out


def test_ray_batch_renders_every_story_in_generates_layout(first_run):
    _, out = first_run
    report = _report(out)
    assert "Ray worker" in report["workers"] and report["complete"]
    assert report["summary"] == {"done": 3, "skipped": 0, "failed": 1}
    for name in GOOD:
        story = _by_name(report)[name]
        assert story["status"] == "done" and story["attempts"] == 1 and story["error"] is None
        folder = out / name
        assert sorted(p.name for p in (folder / "panels").iterdir()) == ["panel_00.png", "panel_01.png"]
        assert {"strip.png", "run.json", "story.json", "conditions"} <= {p.name for p in folder.iterdir()}
        assert json.loads((folder / "run.json").read_text())["model"] == "tiny"


def test_a_story_with_bad_input_is_reported_not_retried_and_does_not_stop_the_others(first_run):
    code, out = first_run
    broken = _by_name(_report(out))["broken"]
    assert broken["status"] == "failed" and broken["attempts"] == 1  # bad input: retrying cannot help
    assert "panels[0].sketch" in broken["error"] and broken["code"] == 2
    assert code == 2  # as `generate` exits on a story's bad input
    assert not (out / "broken" / "panels").exists()


def test_resume_skips_finished_stories_and_completes_a_partial_one(first_run, stories, capsys):
    _, out = first_run
    mtimes = {p: p.stat().st_mtime_ns for name in GOOD for p in (out / name / "panels").iterdir()}
    lost = out / "forest" / "panels" / "panel_01.png"  # as if its worker had died mid-story
    lost.unlink()
    # Which stories are finished is decided before any worker starts, so in-process workers test it as well.
    assert main(["batch", str(stories), "-o", str(out), "--retries", "0", "--workers", "0", "-q"]) == 2
    stories_now = _by_name(_report(out))
    assert {n: stories_now[n]["status"] for n in GOOD} == {"castle": "skipped", "forest": "done", "shore": "skipped"}
    assert stories_now["broken"]["attempts"] == 1  # tried again (once, with --retries 0): it may have been fixed
    assert lost.exists()
    assert {p: p.stat().st_mtime_ns for p in mtimes if p != lost} == {p: t for p, t in mtimes.items() if p != lost}
    assert "2 already finished" in capsys.readouterr().out


def test_without_ray_the_batch_runs_here_with_the_same_pixels(first_run, stories, tmp_path, monkeypatch, capsys):
    _, ray_out = first_run
    monkeypatch.setattr(cluster, "import_ray", lambda: None)
    tasks = [t for t in read_tasks(stories) if t.name == "shore"]
    # The Ray workers ran 1 torch thread each (1 CPU); the summation order, and so the last bit of
    # some pixels, depends on the thread count (README, Determinism): compare like with like.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = run_batch(tasks, tmp_path, Cluster(), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert report.workers == "this process (no Ray)" and report.exit_code == 0
    assert "Ray is not installed" in capsys.readouterr().err
    for n in range(2):
        panel = Path("shore") / "panels" / f"panel_{n:02d}.png"
        assert np.array_equal(_pixels(tmp_path / panel), _pixels(ray_out / panel))


def test_jsonl_stories_with_a_bad_line_are_reported_with_its_line(tmp_path):
    _story(tmp_path / "drawn", 3)
    doc = json.loads((tmp_path / "drawn" / "story.json").read_text())
    (tmp_path / "sketches").mkdir()
    for sketch in (tmp_path / "drawn" / "sketches").iterdir():  # plain lines: sketches beside the JSONL
        (tmp_path / "sketches" / sketch.name).write_bytes(sketch.read_bytes())
    lines = [json.dumps(doc),
             '{"title": "cut short", "panels": [',
             json.dumps({"name": "named", "folder": "drawn", "story": doc}),
             json.dumps({"name": "named", "story": doc}),
             json.dumps({"title": "no panels"})]
    jsonl = tmp_path / "stories.jsonl"
    jsonl.write_text("\n".join(lines) + "\n\n")
    out = tmp_path / "out"
    assert main(["batch", str(jsonl), "-o", str(out), "--workers", "0", "-q"]) == 2
    stories = _report(out)["stories"]
    assert [(s["name"], s["status"], s["attempts"]) for s in stories] == [
        ("line-0001", "done", 1), ("line-0002", "failed", 0), ("named", "done", 1), ("named", "failed", 0),
        ("line-0005", "failed", 0)]
    assert f"{jsonl}:2: line 2, column" in stories[1]["error"] and "not valid JSON" in stories[1]["error"]
    assert "is taken by" in stories[3]["error"] and f"{jsonl}:3" in stories[3]["error"]
    assert "panels" in stories[4]["error"] and stories[4]["source"] == f"{jsonl}:5"
    assert np.array_equal(_pixels(out / "line-0001" / "panels" / "panel_00.png"),
                          _pixels(out / "named" / "panels" / "panel_00.png"))


def test_a_cluster_without_room_or_ray_is_a_clear_error(local_ray, stories, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "out")
    if not local_ray.cluster_resources().get("GPU"):
        assert main(["batch", str(stories), "-o", out, "--gpus-per-story", "1", "-q"]) == 2
        assert "not enough for one worker of 1 GPU(s)" in capsys.readouterr().err
    monkeypatch.setattr(cluster, "import_ray", lambda: None)
    assert main(["batch", str(stories), "-o", out, "--ray-address", "auto", "-q"]) == 2
    assert "--ray-address needs Ray, which is not installed: pip install" in capsys.readouterr().err


def test_a_folder_without_stories_is_bad_input(tmp_path, capsys):
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--workers", "0"]) == 2
    assert "no story.json" in capsys.readouterr().err


LIBRARY_PROMPTS = {
    "schema": "sketchstory/library-prompts", "version": 1, "candidates": 2,
    "stories": [{"name": "The wizard's hat", "scenes": [{"name": "forest", "prompt": "a wizard in a forest"},
                                                        {"name": "the hat", "prompt": "the wizard finds a blue hat"}]}],
    "sundry": {"animals": ["a cat", "an owl"]},
}


def _library_entries(root: Path) -> list[tuple]:
    with Library.open(root) as library:
        return sorted((e.id, e.hash, e.meta, e.file) for e in library.index.entries())


def test_ray_library_build_merges_into_a_partial_library_like_the_serial_build(local_ray, tmp_path):
    prompts_file = tmp_path / "prompts.json"
    prompts_file.write_text(json.dumps(LIBRARY_PROMPTS))
    prompts = load_prompts(prompts_file)
    serial, merged = tmp_path / "serial", tmp_path / "merged"
    with Library.writer(serial, side=64) as library:
        full = build_library(library, prompts, "tiny", progress=False)
    with Library.writer(merged, side=64) as library:  # a build interrupted after the first candidates
        build_library(library, prompts, "tiny", candidates=1, sundry_candidates=1, progress=False)

    # The workers draw the missing sketches; this process, the one writer, merges them into the index.
    args = ["library", "build", str(prompts_file), "--library", str(merged), "--model", "tiny", "-q"]
    assert main([*args, "--workers", "2"]) == 0
    assert full.total == 6 and full.added >= 4  # distinct sketches, else the comparison proves little
    entries = _library_entries(merged)
    assert entries == _library_entries(serial)
    assert len({e[0] for e in entries}) == len(entries) == len(list((merged / "sketches").rglob("*.png")))
    with Library.open(merged) as library:
        assert len(library.index.done_jobs()) == 6

    # Nothing left to draw: no worker starts, nothing changes.
    assert main([*args, "--workers", "0"]) == 0
    assert _library_entries(merged) == entries


class _DiesOnce(Worker):
    """Its process exits in the middle of the first call for a marker file; later calls succeed."""

    def run(self, marker: str) -> str:
        if not Path(marker).exists():
            Path(marker).touch()
            os._exit(1)
        return "drawn"


def test_a_dead_worker_fails_its_item_and_a_new_one_takes_over(local_ray, tmp_path):
    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file
    actor = local_ray.remote(num_cpus=1)(_DiesOnce)

    def outcome(marker: str, retries: int) -> Outcome:
        pool = RayPool(lambda: actor.remote(threads=None), 1, "run", "test")
        try:
            [result] = run_with_retries(pool, [(0, str(tmp_path / marker))], retries)
        finally:
            pool.close()
        return result

    retried = outcome("a", retries=1)
    assert retried.value == "drawn" and retried.attempts == 2
    dead = outcome("b", retries=0)
    assert dead.failure is not None and "died" in dead.failure.message and dead.attempts == 1
