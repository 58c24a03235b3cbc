"""Building a library with stage 1 on the tiny random model: resumable, no duplicates."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sketchstory.cli import run
from sketchstory.commands.library import register
from sketchstory.library import Library, load_prompts
from sketchstory.pipeline.library_build import build_library
from sketchstory.library.index import Index

PROMPTS = {
    "schema": "sketchstory/library-prompts", "version": 1, "candidates": 2,
    "stories": [{"name": "The wizard's hat", "tags": ["wizard"],
                 "scenes": [{"name": "forest", "prompt": "a wizard in a forest"},
                            {"name": "the hat", "prompt": "the wizard finds a blue hat"}]}],
    "sundry": {"animals": ["a cat", {"prompt": "an owl", "tags": ["bird"]}]},
}


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(PROMPTS))
    return path


def test_build_resumes_after_an_interruption_without_duplicates(tmp_path, prompts_file, monkeypatch, capsys):
    root = tmp_path / "lib"
    prompts = load_prompts(prompts_file)
    real_finish = Index.finish_job
    calls = []

    def interrupted(self, key, entry_id):
        # The third sketch is drawn, written to disk and inserted, then the user presses Ctrl-C
        # before its transaction commits: it must be neither lost nor indexed twice.
        calls.append(key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_finish(self, key, entry_id)

    monkeypatch.setattr(Index, "finish_job", interrupted)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["library", "build", str(prompts_file), "--library", str(root), "--model", "tiny", "-q",
                              "--side", "64"])
    assert run(args.func, args) == 130
    assert "the 2 sketch(es) in" in capsys.readouterr().err
    monkeypatch.setattr(Index, "finish_job", real_finish)
    with Library.open(root) as library:
        assert library.index.count() == 2 and len(library.index.done_jobs()) == 2
    assert len(list((root / "sketches").rglob("*.png"))) == 3  # the third was written, never indexed

    with Library.writer(root) as library:
        report = build_library(library, prompts, "tiny", progress=False)
    assert report.already == 2 and report.total == 6
    assert report.added + report.duplicates + len(report.failed) == 4

    with Library.open(root) as library:
        entries = library.index.entries()
        jobs_done = library.index.done_jobs()
        assert len(jobs_done) == 6
        assert len(entries) + len(report.failed) == 6 and len(entries) >= 4
        assert len({e.id for e in entries}) == len(entries) == len({e.hash for e in entries})
        on_disk = {p.stem for p in (root / "sketches").rglob("*.png")}
        assert on_disk == {e.id for e in entries}  # the interrupted sketch was redrawn onto the same file
        story = [e for e in entries if e.meta.group == "story"]
        assert {(e.meta.scene, e.meta.candidate) for e in story} <= {("forest", 0), ("forest", 1),
                                                                      ("the hat", 0), ("the hat", 1)}
        assert all(e.width == e.height == 32 for e in entries)  # the tiny model's size: never upscaled
        assert all(e.meta.source == "tiny" and e.meta.seed is not None for e in entries)
        assert library.index.search("bird")[0].entry.meta.prompt == "an owl"

    # More candidates later: only the new ones are drawn.
    with Library.writer(root) as library:
        report = build_library(library, prompts, "tiny", candidates=3, progress=False)
    assert report.already == 6 and report.added + report.duplicates + len(report.failed) == 2
