"""Story-level editing: panels move with their sketches and seeds, sketches are imported and edited safely."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import draw_figure, write_story
from PIL import Image

from sketchstory import panels
from sketchstory.provenance import file_hash, read_png_meta
from sketchstory.sketches import SketchError
from sketchstory.story import Panel, StoryError, load_story, parse_story


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_story(tmp_path / "s", 4)  # panels 0, 1, 3 have sketches; seeds 10..13
    return tmp_path / "s"


def _load(folder: Path):
    return load_story(folder / "story.json")


def _unseeded(n: int = 3):
    return parse_story({"panels": [{"prompt": f"p{i}", "sketch": f"{i}.png"} for i in range(n)],
                        "settings": {"seed": 5}})


def test_reorder_moves_sketches_and_keeps_every_panels_seed() -> None:
    story = _unseeded()
    before = {p.prompt: (p.sketch, story.panel_seed(i)) for i, p in enumerate(story.panels)}
    for moved in (panels.reorder_panels(story, [2, 0, 1]), panels.move_panel(story, 0, 2)):
        after = {p.prompt: (p.sketch, moved.panel_seed(i)) for i, p in enumerate(moved.panels)}
        assert after == before
    assert [p.prompt for p in panels.move_panel(story, 0, 2).panels] == ["p1", "p2", "p0"]
    assert [p.prompt for p in panels.move_panel(story, 2, 0).panels] == ["p2", "p0", "p1"]


def test_insert_and_delete_keep_the_other_panels_looks() -> None:
    story = _unseeded()
    seeds = {p.prompt: story.panel_seed(i) for i, p in enumerate(story.panels)}
    grown = panels.insert_panel(story, 1, Panel(prompt="new"))
    assert [p.prompt for p in grown.panels] == ["p0", "new", "p1", "p2"]
    assert {p.prompt: grown.panel_seed(i) for i, p in enumerate(grown.panels) if p.prompt != "new"} == seeds
    assert grown.panels[1].seed not in seeds.values()
    appended = panels.insert_panel(story, 3, Panel(prompt="last", seed=7))
    assert appended.panels[3].seed == 7
    shrunk = panels.delete_panel(story, 0)
    assert {p.prompt: shrunk.panel_seed(i) for i, p in enumerate(shrunk.panels)} == {"p1": seeds["p1"], "p2": seeds["p2"]}


def test_deleting_the_last_panel_and_bad_indices_are_refused_clearly() -> None:
    one = parse_story({"panels": [{"prompt": "alone"}]})
    with pytest.raises(StoryError, match="only panel"):
        panels.delete_panel(one, 0)
    story = _unseeded()
    with pytest.raises(StoryError, match=r"panel 3: no such panel; the story has panels 0\.\.2"):
        panels.delete_panel(story, 3)
    with pytest.raises(StoryError, match="no such panel"):
        panels.insert_panel(story, 5, Panel(prompt="x"))
    with pytest.raises(StoryError, match="exactly once"):
        panels.reorder_panels(story, [0, 0, 1])


def test_import_normalises_any_drawing_into_the_story_folder(folder: Path, tmp_path: Path) -> None:
    story = _load(folder)
    # Chalk on a blackboard, far larger than the story.
    board = np.full((200, 300, 3), (30, 40, 35), np.uint8)
    cv2.circle(board, (150, 100), 50, (240, 240, 240), 3)
    src = tmp_path / "my drawing!.png"
    Image.fromarray(board).save(src)
    new = panels.import_sketch(story, folder, 2, src)
    assert new.panels[2].sketch == "sketches/my-drawing.png"
    sketch = Image.open(folder / new.panels[2].sketch)
    assert sketch.mode == "L" and sketch.size == (story.settings.width, story.settings.height)
    ink = np.asarray(sketch) < 128
    assert 0 < ink.mean() < 0.3 and not ink[0].any()  # a black circle on white, not an inverted page
    assert read_png_meta(folder / new.panels[2].sketch)["source_hash"] == file_hash(src)
    # A transparent PNG from a drawing app, same name: a new file, the first one kept.
    layer = np.zeros((80, 80, 4), np.uint8)
    cv2.line(layer, (10, 10), (70, 60), (0, 0, 0, 255), 2)
    Image.fromarray(layer, "RGBA").save(src)
    again = panels.import_sketch(new, folder, 0, src)
    assert again.panels[0].sketch == "sketches/my-drawing-2.png"
    assert again.panels[2].sketch == "sketches/my-drawing.png"
    assert load_story(_save(again, folder)).panels[0].sketch == "sketches/my-drawing-2.png"


def _save(story, folder: Path) -> Path:
    from sketchstory.story import save_story

    return save_story(story, folder / "story.json")


def test_import_rejects_blank_and_corrupt_images(folder: Path, tmp_path: Path) -> None:
    story = _load(folder)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (250, 250, 250)).save(blank)
    with pytest.raises(SketchError, match="no lines"):
        panels.import_sketch(story, folder, 0, blank)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(SketchError, match="corrupt or not a picture"):
        panels.import_sketch(story, folder, 0, corrupt)
    with pytest.raises(SketchError, match="no image file"):
        panels.import_sketch(story, folder, 0, tmp_path / "missing.png")
    assert not (folder / "sketches" / "blank.png").exists() and not (folder / "sketches" / "broken.png").exists()


def test_edits_write_new_files_and_never_touch_the_original(folder: Path) -> None:
    story = _load(folder)
    original = folder / "sketches" / "00.png"
    before = original.read_bytes()
    flipped = panels.edit_sketch(story, folder, 0, "flip", axis="horizontal")
    assert flipped.panels[0].sketch == "sketches/00_edit1.png"
    thick = panels.edit_sketch(flipped, folder, 0, "thickness", pixels=1)
    assert thick.panels[0].sketch == "sketches/00_edit2.png"  # numbered from the original's name
    erased = panels.edit_sketch(thick, folder, 0, "erase", box=(0, 0, 64, 64))
    assert original.read_bytes() == before
    a = np.asarray(Image.open(folder / "sketches" / "00.png"))
    assert np.array_equal(np.asarray(Image.open(folder / flipped.panels[0].sketch)), a[:, ::-1])
    assert (np.asarray(Image.open(folder / thick.panels[0].sketch)) < 128).sum() > (a < 128).sum()
    assert np.asarray(Image.open(folder / erased.panels[0].sketch)).min() == 255
    meta = read_png_meta(folder / erased.panels[0].sketch)
    assert meta["edit"] == "erase" and meta["params"] == {"box": [0, 0, 64, 64]}
    assert meta["source"] == "sketches/00_edit2.png"
    moved = panels.edit_sketch(story, folder, 1, "move", dx=5, scale=0.5)
    assert moved.panels[1].sketch == "sketches/01_edit1.png"
    mask = np.zeros((64, 64), bool)
    assert panels.edit_sketch(story, folder, 1, "erase_mask", mask=mask).panels[1].sketch == "sketches/01_edit2.png"


def test_edit_errors_say_what_to_do(folder: Path) -> None:
    story = _load(folder)
    with pytest.raises(StoryError, match="has no sketch; import one"):
        panels.edit_sketch(story, folder, 2, "flip", axis="horizontal")
    with pytest.raises(ValueError, match="unknown edit 'rotate'"):
        panels.edit_sketch(story, folder, 0, "rotate")
    with pytest.raises(ValueError, match="edit 'flip'.*axis"):
        panels.edit_sketch(story, folder, 0, "flip", angle=3)
    with pytest.raises(SketchError, match="box"):
        panels.edit_sketch(story, folder, 0, "erase", box=(10, 10, 5, 5))
    library = story.with_panels([story.panels[0].model_copy(update={"sketch": "library:cat"})])
    with pytest.raises(StoryError, match="library reference"):
        panels.edit_sketch(library, folder, 0, "flip", axis="horizontal")
    assert sorted(p.name for p in (folder / "sketches").iterdir()) == ["00.png", "01.png", "03.png"]


def test_choose_candidates_by_number_or_file(folder: Path, tmp_path: Path) -> None:
    cands = folder / "candidates" / "panel_02"
    cands.mkdir(parents=True)
    for k in range(3):
        draw_figure(cands / f"cand_{k:02d}.png", 32, 0.3 + 0.2 * k)
    story = _load(folder)
    with pytest.raises(StoryError, match="give the candidate's file"):
        panels.choose_candidate(story, folder, 2, 1)
    story = panels.choose_candidate(story, folder, 2, cands / "cand_00.png")
    assert story.panels[2].sketch == "candidates/panel_02/cand_00.png"
    assert list(panels.candidates_of(story, folder, 2)) == [0, 1, 2]
    story = panels.choose_candidate(story, folder, 2, 2)
    assert story.panels[2].sketch == "candidates/panel_02/cand_02.png"
    edited = panels.edit_sketch(story, folder, 2, "flip", axis="vertical")
    assert panels.choose_candidate(edited, folder, 2, 1).panels[2].sketch == "candidates/panel_02/cand_01.png"
    with pytest.raises(StoryError, match="no candidate 7; it has 0, 1, 2"):
        panels.choose_candidate(story, folder, 2, 7)
    # A candidate from outside the story's folder is copied in, metadata and all.
    outside = tmp_path / "elsewhere" / "panel_05"
    outside.mkdir(parents=True)
    draw_figure(outside / "cand_03.png", 32, 0.5)
    copied = panels.choose_candidate(story, folder, 0, outside / "cand_03.png")
    assert copied.panels[0].sketch == "sketches/panel_05_cand_03.png"
    assert (folder / copied.panels[0].sketch).read_bytes() == (outside / "cand_03.png").read_bytes()
    doc = json.loads((folder / "story.json").read_text())
    assert doc["panels"][2].get("sketch") is None  # nothing saved behind the caller's back
