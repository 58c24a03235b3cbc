"""Output folders: sketchstory writes only into new, empty or its own folders, never into the story's
folder or ``/``, one run at a time; on every surface that writes (CLI, API, batch, web UI, exports)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_story
from sketchstory.cli import main
from sketchstory.locks import exclusive
from sketchstory.outputs import MARKER, OutputError, check_output
from sketchstory import outputs
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story


def story_with_panels_as_sketches(folder: Path) -> Path:
    """A story whose sketches are stored as ``panels/panel_NN.png``, the very names generate writes."""
    path = write_story(folder, 2, steps=2)
    doc = json.loads(path.read_text())
    (folder / "panels").mkdir()
    for n, panel in enumerate(doc["panels"]):
        (folder / panel["sketch"]).rename(folder / "panels" / f"panel_{n:02d}.png")
        panel["sketch"] = f"panels/panel_{n:02d}.png"
    path.write_text(json.dumps(doc))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "--force"])
def test_generate_into_the_storys_own_folder_is_refused_and_changes_nothing(tmp_path, capsys, force) -> None:
    path = story_with_panels_as_sketches(tmp_path / "s")
    before = snapshot(path.parent)
    code = main(["generate", str(path), "-o", str(path.parent), "-q", *(["--force"] if force else [])])
    assert code == 2
    assert "the story's own folder" in capsys.readouterr().err
    assert snapshot(path.parent) == before


def test_generate_into_the_filesystem_root_is_refused_before_anything_is_written(story_file, capsys,
                                                                                  monkeypatch) -> None:
    def no_writing(out: Path) -> None:
        raise AssertionError(f"about to write into {out}")

    monkeypatch.setattr(outputs, "check_writable", no_writing)
    assert main(["generate", str(story_file), "-o", "/", "-q", "--force"]) == 2
    assert "filesystem root" in capsys.readouterr().err
    with pytest.raises(OutputError, match="filesystem root"):
        check_output(Path("/"))


def test_a_folder_of_other_files_is_refused_unless_forced(tiny, tmp_path) -> None:
    path = write_story(tmp_path / "s", 2, steps=2)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "story.json").write_text("the user's own file")
    with pytest.raises(OutputError, match="--force"):
        generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    assert [p.name for p in out.iterdir()] == ["story.json"]
    generate(load_story(path), path.parent, out, RunOptions(progress=False, force=True), tiny)
    assert (out / MARKER).is_file() and json.loads((out / "story.json").read_text())["panels"]


def test_resume_into_its_own_folder_and_into_an_older_versions_folder(tiny, tmp_path) -> None:
    path = write_story(tmp_path / "s", 2, steps=2)
    out = tmp_path / "out"
    generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    assert (out / MARKER).is_file()
    report = generate(load_story(path), path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.reused == [0, 1]
    (out / MARKER).unlink()  # a folder written before the marker existed: generate's layout with run.json
    report = generate(load_story(path), path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert report.reused == [0, 1] and (out / MARKER).is_file()


def test_a_second_run_into_a_folder_in_use_is_refused(story_file, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with exclusive(out / MARKER, "output folder", "wait"):  # another run holds it
        assert main(["generate", str(story_file), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"output folder {out} is in use by another sketchstory process (pid" in err and "Traceback" not in err
    assert not (out / "panels").exists()


def test_leftover_temporary_files_of_a_killed_run_are_removed(tiny, tmp_path) -> None:
    path = write_story(tmp_path / "s", 2, steps=2)
    out = tmp_path / "out"
    generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    leftover = out / "panels" / ".panel_00.k3j2h1.part.png"  # kill -9 between write and rename
    leftover.write_bytes(b"\x89PNG half")
    generate(load_story(path), path.parent, out, RunOptions(resume=True, progress=False), tiny)
    assert not leftover.exists()


# --- batch -----------------------------------------------------------------------------------------


def test_batch_into_a_folder_of_other_files_or_the_stories_folder_is_refused(tmp_path, capsys) -> None:
    stories = tmp_path / "stories"
    write_story(stories / "one", 2, steps=2)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.pdf").write_bytes(b"%PDF")
    assert main(["batch", str(stories), "-o", str(mine), "--workers", "0", "-q"]) == 2
    assert "holds files that sketchstory did not write" in capsys.readouterr().err
    assert main(["batch", str(stories), "-o", str(stories), "--workers", "0", "-q", "--force"]) == 2
    assert "the story's own folder" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.pdf"]
    assert sorted(p.name for p in (stories / "one").iterdir()) == ["sketches", "story.json"]


# --- exports: the web UI's save, library zips, evaluation runs ------------------------------------------


def test_the_pages_save_never_replaces_a_file_that_is_not_a_story(story_file, tmp_path) -> None:
    from sketchstory.story import StoryError
    from sketchstory.ui.workspace import Workspace

    ws = Workspace(tmp_path / "work")
    story, _ = ws.import_story(story_file)
    (tmp_path / "todo.json").write_text('{"shopping": ["milk"]}')
    with pytest.raises(StoryError, match="is not a sketchstory story: it is not replaced"):
        ws.export_story(story, tmp_path / "todo.json")
    assert json.loads((tmp_path / "todo.json").read_text()) == {"shopping": ["milk"]}
    with pytest.raises(StoryError, match="filesystem root"):
        ws.export_story(story, Path("/"))
    assert ws.export_story(story, tmp_path / "saved.json") == tmp_path / "saved.json"
    assert ws.export_story(story, tmp_path / "saved.json") == tmp_path / "saved.json"  # a story: saved over


def test_a_library_export_never_replaces_an_existing_file(tmp_path, capsys) -> None:
    from PIL import Image

    from sketchstory.library.index import Meta
    from sketchstory.library.store import Library

    with Library.writer(tmp_path / "lib") as library, library.index.db:
        library.add(library.normalise(Image.open(write_story(tmp_path / "s", 1).parent / "sketches" / "00.png")),
                    Meta("user", "a figure"))
    (tmp_path / "holiday.zip").write_bytes(b"PK the user's photos")
    assert main(["library", "export", str(tmp_path / "holiday.zip"), "--library", str(tmp_path / "lib")]) == 2
    assert "exists: give the export a new file name" in capsys.readouterr().err
    assert (tmp_path / "holiday.zip").read_bytes() == b"PK the user's photos"


def test_an_evaluation_import_never_writes_into_the_pictures_or_story_folder(tiny, tmp_path) -> None:
    from sketchstory.eval.runs import import_outputs

    path = write_story(tmp_path / "s", 2, steps=2)
    out = tmp_path / "out"
    generate(load_story(path), path.parent, out, RunOptions(progress=False), tiny)
    pictures = out / "panels"
    with pytest.raises(OutputError, match="the story's own folder"):
        import_outputs(pictures, path, pictures, "other")
    with pytest.raises(OutputError, match="the story's own folder"):
        import_outputs(pictures, path, path.parent, "other")


def test_an_ablation_grid_never_writes_into_the_storys_folder_or_a_foreign_one(tiny, tmp_path) -> None:
    from sketchstory.eval.ablation import run_ablation

    path = write_story(tmp_path / "s", 1, steps=2)
    with pytest.raises(OutputError, match="the story's own folder"):
        run_ablation(path, path.parent, [0], ["1"], {}, RunOptions(progress=False), tiny)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "ablation.png").write_bytes(b"someone else's figure")
    with pytest.raises(OutputError, match="did not write"):
        run_ablation(path, tmp_path / "mine", [0], ["1"], {}, RunOptions(progress=False), tiny)
    assert (tmp_path / "mine" / "ablation.png").read_bytes() == b"someone else's figure"
