"""Files are written the way users expect: the umask is honoured, an edited file keeps its mode, a
symlinked story stays a link; on the CLI, the Python API, batch and the web UI's save."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import write_story
from sketchstory.atomic import atomic_write_text, umask
from sketchstory.cli import main
from sketchstory.outputs import MARKER


@pytest.fixture
def group_readable() -> Iterator[None]:
    """umask 027: files 0640 (the owner writes, the group reads, others nothing)."""
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.name != MARKER]


def test_umask_is_read_without_changing_it(group_readable) -> None:
    assert umask() == 0o027 and umask() == 0o027


def test_generate_outputs_honour_the_umask(story_file, tmp_path, group_readable) -> None:
    out = tmp_path / "out"
    assert main(["generate", str(story_file), "-o", str(out), "-q"]) == 0
    written = files(out)
    assert {p.name for p in written} >= {"panel_00.png", "strip.png", "story.json", "run.json"}
    assert {str(p.relative_to(out)): mode(p) for p in written} == {str(p.relative_to(out)): 0o640 for p in written}


def test_batch_outputs_honour_the_umask(tmp_path, group_readable) -> None:
    write_story(tmp_path / "stories" / "one", 2, steps=2)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "stories"), "-o", str(out), "--workers", "0", "-q"]) == 0
    assert {mode(p) for p in files(out)} == {0o640}


def test_editing_a_story_keeps_its_mode(tmp_path, group_readable) -> None:
    path = write_story(tmp_path / "s", 3)
    path.chmod(0o664)  # shared with the group, whatever the umask
    assert main(["story", "delete", str(path), "2"]) == 0
    assert mode(path) == 0o664
    assert main(["story", "flip", str(path), "0"]) == 0
    assert mode(path) == 0o664
    assert mode(next((tmp_path / "s" / "sketches").glob("*_edit1.png"))) == 0o640  # a new file: the umask


def test_a_symlinked_story_stays_a_link_and_its_target_is_edited(tmp_path) -> None:
    path = write_story(tmp_path / "s", 3)
    link = tmp_path / "s" / "current.json"
    link.symlink_to("story.json")
    assert main(["story", "delete", str(link), "2"]) == 0
    assert link.is_symlink() and os.readlink(link) == "story.json"
    assert main(["story", "list", str(path)]) == 0 and len(path.read_text().split('"prompt"')) == 3


def test_atomic_writes_through_a_dangling_link_and_keep_a_read_only_mode(tmp_path) -> None:
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    atomic_write_text(tmp_path / "link.txt", "hello")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "hello"
    (tmp_path / "real.txt").chmod(0o444)
    atomic_write_text(tmp_path / "real.txt", "again")
    assert mode(tmp_path / "real.txt") == 0o444


def test_the_pages_save_and_download_honour_the_umask(story_file, tmp_path, group_readable) -> None:
    from sketchstory.ui.workspace import Workspace

    ws = Workspace(tmp_path / "work")
    story, _ = ws.import_story(story_file)
    ws.save(story)
    target = ws.export_story(story, tmp_path / "saved")
    assert mode(ws.story_path) == 0o640 and mode(target) == 0o640
    assert {mode(p) for p in (tmp_path / "saved" / "sketches").iterdir()} == {0o640}
