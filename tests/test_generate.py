"""End to end on the tiny models, from the command line: files, metadata, determinism, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SIZE, write_story
from sketchstory.cli import main
from sketchstory.provenance import read_png_meta
from sketchstory.story import load_story


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def run_cli(story: Path, out: Path, *extra: str) -> int:
    return main(["generate", str(story), "-o", str(out), "-q", *extra])


def test_generate_writes_panels_conditions_strip_and_run_info(story_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(story_file, out) == 0
    for n in range(3):
        png = out / "panels" / f"panel_{n:02d}.png"
        assert Image.open(png).size == (SIZE, SIZE)
        meta = read_png_meta(png)
        assert meta["panel"] == n and meta["seed"] == 10 + n
        assert meta["story"]["settings"]["model"] == "tiny" and meta["story"]["panels"][n]["seed"] == 10 + n
        assert "red cape" in meta["prompt"]  # the character's description is part of the prompt
    assert (out / "conditions" / "panel_00_canny.png").exists()
    assert not (out / "conditions" / "panel_02_canny.png").exists()  # panel 2 has no sketch
    strip = Image.open(out / "strip.png")
    assert strip.width >= 3 * SIZE
    info = json.loads((out / "run.json").read_text())
    assert [p["status"] for p in info["panels"]] == ["rendered"] * 3
    assert info["maga_calls"] > 0 and info["peak_rss_bytes"] > 0 and "diffusers" in info["versions"]
    assert load_story(out / "story.json", check_files=False).title == "Test story"
    assert not list(out.rglob("*.part*"))  # no half-written files


def test_same_seed_same_pixels_and_modes_agree(story_file: Path, tmp_path: Path) -> None:
    assert run_cli(story_file, tmp_path / "a") == 0
    assert run_cli(story_file, tmp_path / "b") == 0
    assert run_cli(story_file, tmp_path / "c", "--mode", "batched") == 0
    assert run_cli(story_file, tmp_path / "d", "--no-maga") == 0
    for n in range(3):
        name = f"panels/panel_{n:02d}.png"
        a = pixels(tmp_path / "a" / name)
        assert (a == pixels(tmp_path / "b" / name)).all()
        assert np.abs(a - pixels(tmp_path / "c" / name)).max() <= 1
    assert (pixels(tmp_path / "a/panels/panel_00.png") == pixels(tmp_path / "d/panels/panel_00.png")).all()
    assert np.abs(pixels(tmp_path / "a/panels/panel_02.png") - pixels(tmp_path / "d/panels/panel_02.png")).max() > 2


def test_resume_reuses_finished_panels_and_append_matches_full_run(tmp_path: Path) -> None:
    full = write_story(tmp_path / "full", 4)
    assert run_cli(full, tmp_path / "full_out") == 0
    short = write_story(tmp_path / "inc", 3)
    out = tmp_path / "inc_out"
    assert run_cli(short, out) == 0
    first = (out / "panels/panel_00.png").stat().st_mtime_ns
    longer = write_story(tmp_path / "inc", 4)  # the same story with a fourth panel appended
    assert run_cli(longer, out, "--resume") == 0
    info = json.loads((out / "run.json").read_text())
    assert [p["status"] for p in info["panels"]] == ["reused"] * 3 + ["rendered"]
    assert info["recomputed_for_memory"] == [0, 1, 2]  # no saved memory: recomputed, not re-decoded
    assert (out / "panels/panel_00.png").stat().st_mtime_ns == first
    assert np.abs(pixels(out / "panels/panel_03.png") - pixels(tmp_path / "full_out/panels/panel_03.png")).max() <= 1


def test_only_regenerates_one_panel_from_saved_memory(story_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(story_file, out, "--keep-memory") == 0
    before = pixels(out / "panels/panel_02.png")
    (out / "panels/panel_02.png").unlink()
    assert run_cli(story_file, out, "--only", "2") == 0
    info = json.loads((out / "run.json").read_text())
    assert info["recomputed_for_memory"] == []  # memory came from memory/*.safetensors
    assert np.abs(pixels(out / "panels/panel_02.png") - before).max() <= 1


@pytest.mark.parametrize("args, code, needle", [
    (["--size", "30x32"], 2, "multiple of 8"),
    (["--memory", "window:x"], 2, "memory policy"),
    (["--only", "7"], 2, "panels 0..2"),
    (["--model", "nobody/nothing"], 3, "--model DIR"),
])
def test_bad_settings_fail_clearly(story_file: Path, tmp_path: Path, capsys, args, code, needle) -> None:
    assert run_cli(story_file, tmp_path / "o", *args) == code
    assert needle in capsys.readouterr().err


def test_missing_sketch_is_reported_before_any_work(story_file: Path, tmp_path: Path, capsys) -> None:
    (story_file.parent / "sketches" / "01.png").unlink()
    assert run_cli(story_file, tmp_path / "o") == 2
    assert "panels[1].sketch: file not found: sketches/01.png" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_library_sketch_references_resolve_and_fail_clearly(tmp_path: Path, capsys) -> None:
    from sketchstory.library.importer import import_folder
    from sketchstory.library.store import Library

    (tmp_path / "drawings").mkdir()
    write_story(tmp_path / "src", 1)
    (tmp_path / "src" / "sketches" / "00.png").rename(tmp_path / "drawings" / "wizard.png")
    with Library.writer(tmp_path / "lib") as lib:
        entry = import_folder(lib, tmp_path / "drawings").added[0]
    story = write_story(tmp_path / "s", 1, sketches=False)
    doc = json.loads(story.read_text())
    doc["panels"][0]["sketch"] = f"library:{entry.id}"
    story.write_text(json.dumps(doc))
    assert run_cli(story, tmp_path / "out", "--library", str(tmp_path / "lib")) == 0
    assert (tmp_path / "out" / "conditions" / "panel_00_canny.png").exists()
    doc["panels"][0]["sketch"] = "library:doesnotexist"
    story.write_text(json.dumps(doc))
    assert run_cli(story, tmp_path / "out2", "--library", str(tmp_path / "lib")) == 2
    assert "panels[0].sketch" in capsys.readouterr().err


def test_check_reports_story_and_library_problems(story_file: Path, tmp_path: Path, capsys) -> None:
    assert main(["check", str(story_file)]) == 0
    doc = json.loads(story_file.read_text())
    doc["panels"][0]["sketch"] = "library:000000000000"
    story_file.write_text(json.dumps(doc))
    assert main(["check", str(story_file), "--library", str(tmp_path / "nolib")]) == 2
    assert "panels[0].sketch" in capsys.readouterr().err



def test_a_long_storys_strip_is_split_into_pages_and_a_shorter_rerun_drops_the_extra_pages(
        tmp_path: Path, monkeypatch, capsys) -> None:
    import functools

    from sketchstory import layout
    from sketchstory.pipeline import runner

    story, out = write_story(tmp_path / "s", 3, steps=2), tmp_path / "out"
    monkeypatch.setattr(runner, "paginate", functools.partial(layout.paginate, per_page=2))  # 3 panels: 2 + 1
    assert run_cli(story, out) == 0
    assert runner.strip_pages(out) == [out / "strip.png", out / "strip_2.png"]
    assert Image.open(out / "strip.png").width > Image.open(out / "strip_2.png").width  # two panels, then one
    assert f"comic strip: {out / 'strip.png'} (continued in strip_2.png)" in capsys.readouterr().out
    monkeypatch.setattr(runner, "paginate", layout.paginate)
    assert run_cli(story, out, "--resume") == 0
    assert runner.strip_pages(out) == [out / "strip.png"] and not (out / "strip_2.png").exists()


def test_a_story_that_places_characters_routes_maga_in_every_mode_and_records_who_is_where(tmp_path: Path) -> None:
    story = write_story(tmp_path / "s", 4, maga={"start_step": 1, "memory": "anchors:0+window:1"})
    doc = json.loads(story.read_text())
    right_half = np.zeros((SIZE, SIZE), np.uint8)
    right_half[:, SIZE // 2 :] = 255
    Image.fromarray(right_half).save(tmp_path / "s" / "fox.png")  # the fox's region mask
    doc["characters"].append({"name": "fox", "description": "a red fox"})
    doc["panels"][0] |= {"setting": "forest", "characters": [{"name": "wizard", "box": [0, 0.1, 0.5, 1]},
                                                             {"name": "fox", "box": [0.5, 0.3, 1, 1]}]}
    doc["panels"][1] |= {"setting": "forest", "characters": [{"name": "fox", "mask": "fox.png"}]}
    doc["panels"][3] |= {"characters": [{"name": "wizard", "box": [0.2, 0, 0.8, 1]}]}
    story.write_text(json.dumps(doc))
    out, batched, plain = tmp_path / "seq", tmp_path / "bat", tmp_path / "plain"
    assert run_cli(story, out, "--mode", "sequential", "--keep-memory") == 0
    assert run_cli(story, batched, "--mode", "batched") == 0
    meta = read_png_meta(out / "panels/panel_00.png")
    assert meta["characters"] == [{"name": "wizard", "box": [0, 0.1, 0.5, 1]}, {"name": "fox", "box": [0.5, 0.3, 1, 1]}]
    assert meta["setting"] == "forest" and meta["story"]["version"] == 2
    assert read_png_meta(out / "panels/panel_02.png")["characters"] == [{"name": "wizard"}]  # the prompt names it
    info = json.loads((out / "run.json").read_text())
    assert ["character", "fox"] in info["maga_routed_tracks"] and ["background", "forest"] in info["maga_routed_tracks"]
    for n in range(4):
        name = f"panels/panel_{n:02d}.png"
        assert np.abs(pixels(out / name) - pixels(batched / name)).max() <= 1
    before = pixels(out / "panels/panel_03.png")  # incremental: panel 3 again, from the saved memory
    assert run_cli(story, out, "--only", "3") == 0
    assert json.loads((out / "run.json").read_text())["recomputed_for_memory"] == []
    assert np.abs(pixels(out / "panels/panel_03.png") - before).max() <= 1
    # The same characters by name only (a version-1 story): the same prompts, plain MAGA, other pixels.
    for panel in doc["panels"]:
        panel.pop("setting", None)
        if "characters" in panel:
            panel["characters"] = [c["name"] for c in panel["characters"]]
    story.write_text(json.dumps(doc))
    assert run_cli(story, plain, "--mode", "sequential") == 0
    diffs = [np.abs(pixels(out / f"panels/panel_{n:02d}.png") - pixels(plain / f"panels/panel_{n:02d}.png")).max()
             for n in range(4)]
    assert diffs[0] <= 1 and max(diffs[1:]) > 2
    assert json.loads((plain / "run.json").read_text())["maga_routed_tracks"] is None
