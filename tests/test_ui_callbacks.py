"""The web UI's logic without a browser: story edits, settings form, work folder, canvas, renders, sources.

These modules do not import Gradio, so they run without the ``ui`` extra.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import SIZE
from PIL import Image, ImageDraw

from sketchstory.library.index import LibraryError, Meta
from sketchstory.library.store import Library
from sketchstory.models import ModelLoadError
from sketchstory.pipeline.runner import RunReport
from sketchstory.sketches import SketchError
from sketchstory.story import StoryError, load_story, parse_story
from sketchstory.ui import state
from sketchstory.ui.canvas import (
    canny_preview,
    canvas_size,
    editor_value,
    is_blank,
    merge_drawing,
    picture_from_data_url,
    reduced,
    same_sketch,
    shown_sketch,
)
from sketchstory.ui.render import Cancelled, PanelProgress, Renderer, Saved, Step
from sketchstory.ui.settings_form import FIELDS, apply_settings, values_of
from sketchstory.ui.sources import search_library, sketch_candidates
from sketchstory.ui.workspace import Workspace


def story3():
    return parse_story({"title": "T", "panels": [{"prompt": "one"}, {"prompt": "two", "sketch": "s/2.png"},
                                                 {"prompt": "three"}]})


@pytest.fixture
def imported(story_file: Path, tmp_path: Path) -> tuple[Workspace, object]:
    """A work folder holding the 3-panel tiny test story (panel 2 has no sketch)."""
    ws = Workspace(tmp_path / "work")
    story, notes = ws.import_story(story_file)
    assert notes == []
    ws.save(story)
    return ws, story


# --- the working story ------------------------------------------------------------------------


def test_new_story_is_a_valid_story_for_the_demo_model() -> None:
    story = state.new_story()
    assert len(story.panels) == 1 and story.settings.model == "demo" and story.settings.width == 64
    assert state.panel_choices(story) == [("Panel 1", 0)]


def test_characters_text_round_trips_and_bad_lines_are_located() -> None:
    chars = state.parse_characters("wizard: a young wizard\n\ncat")
    assert [(c.name, c.description) for c in chars] == [("wizard", "a young wizard"), ("cat", "")]
    story = state.set_meta(story3(), "T", "", "", "wizard: a young wizard\ncat")
    assert state.parse_characters(state.characters_text(story)) == chars
    with pytest.raises(StoryError, match="line 2"):
        state.parse_characters("wizard: ok\n: no name")
    with pytest.raises(StoryError, match="used twice"):
        state.set_meta(story3(), "T", "", "", "cat\ncat: again")


def test_panel_text_edits_keep_the_story_valid() -> None:
    story = state.set_panel_text(story3(), 1, "a new prompt", "  ", 7)
    assert story.panels[1].prompt == "a new prompt" and story.panels[1].caption is None
    assert story.panels[1].seed == 7 and story.panels[1].sketch == "s/2.png"
    assert state.set_panel_text(story, 1, "x", "cap", None).panels[1].seed is None
    with pytest.raises(StoryError, match="panel 2: the prompt is empty"):
        state.set_panel_text(story, 1, "   ", "", None)


def test_add_delete_and_move_panels_carry_sketches_and_seeds() -> None:
    story = story3()
    seeds = [story.panel_seed(i) for i in range(3)]
    added, index = state.add_panel(story, 0, " inserted ")
    assert index == 1 and [p.prompt for p in added.panels] == ["one", "inserted", "two", "three"]
    assert [added.panel_seed(i) for i in (0, 2, 3)] == seeds  # pinned: the others keep their look
    with pytest.raises(StoryError, match="write its prompt first"):
        state.add_panel(story, 0, "  ")
    moved, index = state.move_panel(story, 1, 1)
    assert index == 2 and moved.panels[2].sketch == "s/2.png" and moved.panel_seed(2) == seeds[1]
    assert state.move_panel(story, 2, 1) == (story, 2)  # already last
    assert state.move_panel(story, 0, -1) == (story, 0)
    deleted, index = state.delete_panel(story, 2)
    assert index == 1 and len(deleted.panels) == 2
    single = parse_story({"panels": [{"prompt": "only"}]})
    with pytest.raises(StoryError, match="only panel"):
        state.delete_panel(single, 0)


def test_reseed_gives_a_new_deterministic_seed_to_one_panel() -> None:
    story = story3()
    again = state.reseed(story, 1)
    assert again.panel_seed(1) != story.panel_seed(1) and again.panel_seed(1) == state.reseed(story, 1).panel_seed(1)
    assert again.panel_seed(1) not in {story.panel_seed(i) for i in range(3)}
    assert again.panels[0] == story.panels[0] and again.panels[2] == story.panels[2]


def test_clamp_index_accepts_what_components_send() -> None:
    story = story3()
    assert [state.clamp_index(story, v) for v in (None, 1.0, 7, -2)] == [0, 1, 2, 0]


# --- the settings form ------------------------------------------------------------------------


def test_settings_form_round_trips_every_setting() -> None:
    story = story3()
    values = values_of(story.settings)
    assert len(values) == len(FIELDS)
    assert apply_settings(story, values).settings == story.settings


def test_settings_form_converts_and_validates_with_locations() -> None:
    story = story3()
    values = dict(zip([f.key for f in FIELDS], values_of(story.settings), strict=True))
    values.update({"maga.token_budget": 64, "maga.start_step": "3", "controlnet": " ", "steps": 12.0,
                   "maga.memory": "window:3"})
    settings = apply_settings(story, list(values.values())).settings
    assert settings.maga.token_budget == 64 and settings.maga.start_step == 3 and settings.controlnet is None
    assert settings.steps == 12 and isinstance(settings.steps, int) and settings.maga.memory == "window:3"
    values.update({"maga.memory": "window:x"})
    with pytest.raises(StoryError, match="settings.maga.memory: memory policy 'window:x'"):
        apply_settings(story, list(values.values()))
    values.update({"maga.memory": "all", "width": 30})
    with pytest.raises(StoryError, match="width 30 is not a multiple of 8"):
        apply_settings(story, list(values.values()))
    values.update({"width": None})
    with pytest.raises(StoryError, match="settings.width: give a number"):
        apply_settings(story, list(values.values()))


# --- the work folder --------------------------------------------------------------------------


def test_import_copies_sketches_in_by_content_and_reports_missing_ones(story_file: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "work")
    story, notes = ws.import_story(story_file)
    refs = [p.sketch for p in story.panels]
    assert refs[2] is None and all(r.startswith("sketches/") for r in refs[:2])
    assert (ws.root / refs[0]).read_bytes() == (story_file.parent / "sketches/00.png").read_bytes()
    assert ws.import_story(story_file)[0] == story  # the same files again: the same references
    (story_file.parent / "sketches/01.png").unlink()
    story, notes = ws.import_story(story_file)
    assert story.panels[1].sketch is None and notes == [
        "panel 2: file not found: sketches/01.png; the panel has no sketch now, draw or upload one"]


def test_autosave_and_export_write_story_files_the_cli_reads(imported, tmp_path: Path) -> None:
    ws, story = imported
    assert ws.load() == story
    target = ws.export_story(story, tmp_path / "exported")
    assert target == tmp_path / "exported" / "story.json"
    assert load_story(target) == story  # the sketches came along
    assert ws.export_story(story, tmp_path / "named.json") == tmp_path / "named.json"


def test_uploads_refuse_other_files_and_unsafe_zips(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "work")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StoryError, match="upload a story file"):
        ws.import_upload(tmp_path / "notes.txt")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../story.json", "{}")
    with pytest.raises(StoryError, match="points outside"):
        ws.import_upload(tmp_path / "evil.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "no story")
    with pytest.raises(StoryError, match="no story.json"):
        ws.import_upload(tmp_path / "empty.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(StoryError, match="not a readable zip"):
        ws.import_upload(tmp_path / "bad.zip")
    with pytest.raises(StoryError, match="generate the story first"):
        ws.results_zip()


# --- the canvas -------------------------------------------------------------------------------


def stroke_picture(size: tuple[int, int]) -> Image.Image:
    picture = Image.new("RGB", size, "white")
    ImageDraw.Draw(picture).line((size[0] // 5, size[1] // 4, size[0] * 4 // 5, size[1] * 3 // 4), fill="black",
                                 width=6)
    return picture


def test_canvas_follows_the_story_aspect_and_shows_the_sketch_as_erasable_ink(imported) -> None:
    ws, story = imported
    wide = parse_story({"panels": [{"prompt": "x"}], "settings": {"width": 96, "height": 48}})
    assert canvas_size(wide.settings) == (512, 256) and canvas_size(story.settings) == (512, 512)
    value = editor_value(ws.sketch_file(story, 0), (512, 512))
    assert value["composite"] is None and is_blank(value["background"])
    (layer,) = value["layers"]
    alpha = np.asarray(layer)[..., 3]
    assert layer.mode == "RGBA" and alpha.max() > 200 and alpha.min() == 0  # ink opaque, paper transparent
    assert editor_value(None, (512, 512))["layers"] == []


def test_drawings_become_sketches_and_blank_pages_are_none() -> None:
    size = (512, 512)
    sketch = merge_drawing(stroke_picture(size), None, size)
    assert sketch is not None and sketch.size == size and sketch.mode == "L"
    assert np.asarray(sketch).min() < 50 and np.median(np.asarray(sketch)) == 255  # dark lines on white
    assert same_sketch(sketch, merge_drawing(stroke_picture(size), None, size))
    assert not same_sketch(sketch, None) and same_sketch(None, None)
    assert merge_drawing(Image.new("RGB", size, "white"), None, size) is None


def test_one_stroke_changes_only_what_was_drawn(tmp_path: Path) -> None:
    """Item 5 of issue 20: a stroke on a small grey-lined sketch must not redraw the rest of it."""
    small = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(small).arc((8, 8, 56, 56), 20, 160, fill=150, width=1)  # faint anti-aliased-like line
    small.save(tmp_path / "s.png")
    size = (512, 512)
    shown = shown_sketch(tmp_path / "s.png", size)
    # What the browser sends back: the shown sketch composited on white (off by one here and there), plus a stroke.
    composite = np.asarray(shown, dtype=np.int16) + np.random.default_rng(0).integers(-2, 3, (512, 512))
    composite = Image.fromarray(np.clip(composite, 0, 255).astype(np.uint8)).convert("RGB")
    ImageDraw.Draw(composite).line((400, 20, 500, 60), fill="black", width=4)
    merged = np.asarray(merge_drawing(composite, shown, size))
    stroke = np.zeros((512, 512), bool)
    stroke[10:70, 390:510] = True
    assert np.array_equal(merged[~stroke], np.asarray(shown)[~stroke])  # untouched pixels are exactly as shown
    assert merged[stroke].min() == 0  # the stroke is in


def test_pictures_sent_by_the_page_are_decoded_reduced_and_limited() -> None:
    """Item 4 of issue 20: the page's script sends a chosen picture as a data URL; the server checks it again."""
    big = Image.new("RGB", (3000, 1500), "white")
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert picture_from_data_url(url).size == (1024, 512)  # a picture that came another way is reduced here too
    with pytest.raises(SketchError, match="not a picture") as err:
        picture_from_data_url("data:text/plain;base64," + base64.b64encode(b"notes").decode())
    assert "/tmp" not in str(err.value)
    with pytest.raises(SketchError, match="larger than 25 MB"):
        picture_from_data_url("data:image/png;base64," + "A" * (34 * 2**20))
    for damaged in ("notes", "data:image/png;base64,@@@"):
        with pytest.raises(SketchError):
            picture_from_data_url(damaged)


def test_big_pictures_are_reduced_fast() -> None:
    """Item 4 of issue 20: a 6000 x 6000 upload is reduced in well under a second before it is cleaned."""
    import time

    big = Image.new("RGB", (6000, 6000), "white")
    ImageDraw.Draw(big).ellipse((500, 500, 5500, 5500), outline="black", width=40)
    started = time.perf_counter()
    small = reduced(big)
    assert time.perf_counter() - started < 2.0 and max(small.size) == 1024
    assert reduced(small) is small


def test_canny_preview_is_the_condition_stage_2_gets(imported) -> None:
    from sketchstory.pipeline.conditions import prepare_inputs, read_sketches

    ws, story = imported
    first = story.with_panels(story.panels[:1])
    (inputs,) = prepare_inputs(first, read_sketches(first, ws.root), 8)
    preview = canny_preview(ws.sketch_file(story, 0), story.settings)
    assert preview.size == (SIZE, SIZE) and np.array_equal(np.asarray(preview), np.asarray(inputs.canny))


# --- rendering --------------------------------------------------------------------------------


def run_all(renderer: Renderer, story, ws: Workspace, **kw) -> tuple[list[Step], RunReport]:
    """The job's steps and report; each rendered panel is announced once, as it is written."""
    events = list(renderer.run(story, ws.root, ws.out, **kw))
    report = events.pop()
    assert isinstance(report, RunReport) and all(isinstance(e, Step | Saved) for e in events)
    saved = [i for i, e in enumerate(events) if isinstance(e, Saved)]
    assert sorted(events[i].panel for i in saved) == report.rendered
    return [e for e in events if isinstance(e, Step)], report


def test_render_streams_progress_regenerates_one_panel_and_zips_everything(imported) -> None:
    ws, story = imported
    renderer = Renderer("cpu")
    steps, report = run_all(renderer, story, ws)
    assert report.rendered == [0, 1, 2] and steps[-1].done == steps[-1].total == 3 * story.settings.steps
    progress = PanelProgress(story)
    for step in steps:
        progress.update(step)
    assert [progress.status(n) for n in range(3)] == ["denoised"] * 3
    progress.update(Saved(1))
    assert progress.status(1) == "saved" and progress.done == progress.total == 3 * story.settings.steps
    assert "| 2 | the wizard finds a blue hat | rendered |" in progress.markdown({1: "rendered"})

    results = ws.results()
    assert results.story == story and all(results.panels) and results.strip is not None
    before = [p.read_bytes() for p in results.panels]
    again = state.reseed(story, 1)
    _, report = run_all(renderer, again, ws, only=frozenset({1}))
    assert report.rendered == [1] and report.reused == [0, 2] and report.recomputed == []  # memory was kept
    after = [p.read_bytes() for p in ws.results().panels]
    assert after[1] != before[1] and after[0] == before[0] and after[2] == before[2]

    with zipfile.ZipFile(ws.results_zip()) as zf:
        names = set(zf.namelist())
        zipped = json.loads(zf.read("test-story/story.json"))
    assert {f"test-story/panels/panel_{n:02d}.png" for n in range(3)} | {
        "test-story/strip.png", "test-story/run.json", "test-story/conditions/panel_00_canny.png",
        f"test-story/{story.panels[0].sketch}"} <= names
    assert not any("/memory/" in n for n in names)
    assert zipped["panels"][1]["seed"] == again.panels[1].seed
    reopened, notes = ws.import_upload(ws.results_zip())  # a download opens again as it was
    assert notes == [] and reopened == again


def test_stop_ends_a_render_at_the_next_step_and_keeps_finished_panels(imported) -> None:
    ws, story = imported
    renderer = Renderer("cpu")
    steps = 10  # a stop lands within a step or two, long before panel 1 could finish
    # Sequential, so that panel 0 is finished while panel 1 denoises (auto would denoise them together).
    settings = story.settings.model_copy(update={"steps": steps, "mode": "sequential"})
    long = story.model_copy(update={"settings": settings})
    with pytest.raises(Cancelled):
        for event in renderer.run(long, ws.root, ws.out):
            if isinstance(event, Step) and event.done == steps + 1:  # panel 0 is saved before panel 1's first step
                renderer.cancel()
    assert (ws.out / "panels/panel_00.png").exists() and not (ws.out / "panels/panel_02.png").exists()
    _, report = run_all(renderer, long, ws, only=frozenset({2}))  # free again; panel 0 is not redone
    assert report.rendered == [2] and 0 not in report.recomputed


def test_a_missing_model_is_a_model_load_error(imported, tmp_path: Path) -> None:
    ws, story = imported
    story = story.model_copy(update={"settings": story.settings.model_copy(update={"model": str(tmp_path / "none")})})
    with pytest.raises(ModelLoadError, match="does not exist"):
        list(Renderer("cpu").run(story, ws.root, ws.out))


# --- stage 1 and the sketch library -----------------------------------------------------------


def test_stage1_candidates_for_one_panel_never_overwrite_earlier_ones(imported) -> None:
    ws, story = imported
    first = sketch_candidates(story, 1, ws.root / "candidates", "tiny", 2, None, "cpu")
    again = sketch_candidates(story, 1, ws.root / "candidates", "tiny", 2, None, "cpu")
    other = sketch_candidates(story, 1, ws.root / "candidates", "tiny", 2, 12345, "cpu")
    assert [c.index for c in first] == [0, 1] and all(c.path.is_file() for c in first + again + other)
    assert first[0].path.parent != again[0].path.parent  # a new folder each time
    assert first[0].path.read_bytes() != other[0].path.read_bytes() or first[0].blank  # a new seed, new candidates
    assert [c.seed for c in first] == [c.seed for c in again] != [c.seed for c in other]
    assert Image.open(first[0].path).size == (SIZE, SIZE)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    with Library.writer(root) as lib, lib.index.db:
        for n, (prompt, category) in enumerate([("a tall wizard hat", "clothes"), ("a sleeping cat", "animals")]):
            lib.add(drawing_of(n), Meta("sundry", prompt, (), category=category))
    return root


def drawing_of(n: int) -> Image.Image:
    page = Image.new("L", (96, 96), 255)
    ImageDraw.Draw(page).ellipse((10 + 10 * n, 10, 60 + 10 * n, 80), outline=0, width=3)
    return page


def test_library_search_browses_finds_and_explains_a_missing_library(library: Path, tmp_path: Path) -> None:
    assert [s.prompt for s in search_library(library, "wizard hat")] == ["a tall wizard hat"]
    assert {s.label for s in search_library(library, "")} == {"clothes", "animals"}
    assert search_library(library, "dragon") == []
    with pytest.raises(LibraryError, match="no sketch library at"):
        search_library(tmp_path / "nowhere", "cat")


def test_opening_a_story_copies_library_sketches_in_when_the_library_has_them(library: Path, tmp_path: Path) -> None:
    (cat,) = search_library(library, "cat")
    path = tmp_path / "story.json"
    path.write_text(json.dumps({"panels": [{"prompt": "a cat", "sketch": f"library:{cat.id}"},
                                           {"prompt": "a dog", "sketch": "library:0000000000"}]}))
    story, notes = Workspace(tmp_path / "work", library).import_story(path)
    assert story.panels[0].sketch.startswith("sketches/") and story.panels[1].sketch == "library:0000000000"
    assert len(notes) == 1 and notes[0].startswith("panel 2: no sketch '0000000000'")
