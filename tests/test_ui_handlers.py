"""The page's event handlers called directly (no server, no browser): what each returns to the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

gr = pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")

from sketchstory.story import StoryError  # noqa: E402
from sketchstory.ui.handlers import Handlers  # noqa: E402
from sketchstory.ui.render import Renderer  # noqa: E402
from sketchstory.ui.settings_form import FIELDS, values_of  # noqa: E402
from sketchstory.ui.widgets import Widgets, build_widgets  # noqa: E402
from sketchstory.ui.workspace import Workspace  # noqa: E402


@pytest.fixture(scope="module")
def widgets() -> Widgets:
    with gr.Blocks():
        return build_widgets("work")


@pytest.fixture
def page(widgets: Widgets, story_file: Path, tmp_path: Path) -> tuple[Handlers, Widgets]:
    ws = Workspace(tmp_path / "work")
    ws.save(ws.import_story(story_file)[0])
    return Handlers(ws, Renderer("cpu"), widgets), widgets


def setting(w: Widgets, key: str) -> gr.components.Component:
    return w.settings[[f.key for f in FIELDS].index(key)]


def stroke(size: int = 512) -> Image.Image:
    picture = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(picture).line((100, 100, 400, 300), fill="black", width=8)
    return picture


def test_load_restores_the_autosaved_story_and_starts_a_new_one_when_it_is_broken(page) -> None:
    h, w = page
    out = h.load()
    assert out[w.title] == "Test story" and out[w.story] == h.ws.load()
    assert out[w.selector].value == 0 and out[w.editor]["layers"]  # panel 1 has a sketch
    h.ws.story_path.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable.*not valid JSON.*kept as .*story.unreadable-1.json"):
        out = h.load()
    assert out[w.title] == "Untitled story" and h.ws.load().title == "Untitled story"
    assert (h.ws.root / "story.unreadable-1.json").read_text() == "{not json"  # the user's file is not lost


def test_panel_edits_autosave_and_refuse_a_blank_prompt(page) -> None:
    h, w = page
    story = h.ws.load()
    out = h.edit_panel(story, 1, "a changed prompt", "cap", 99)
    assert out[w.story].panels[1].prompt == "a changed prompt" and h.ws.load() == out[w.story]
    out = h.edit_panel(out[w.story], 1, "  ", "cap", 99)
    assert w.story not in out and "prompt is empty" in out[w.panel_note]
    assert h.ws.load().panels[1].prompt == "a changed prompt"


def test_add_move_delete_return_the_panel_that_is_now_open(page) -> None:
    h, w = page
    story = h.ws.load()
    out = h.add(story, 0, "a new panel")
    assert out[w.selector].value == 1 and out[w.prompt] == "a new panel" and out[w.new_prompt] == ""
    assert [c[1] for c in out[w.selector].choices] == [0, 1, 2, 3]
    out = h.move(out[w.story], 1, delta=1)
    assert out[w.selector].value == 2 and out[w.story].panels[2].prompt == "a new panel"
    out = h.delete(out[w.story], 2)
    assert out[w.selector].value == 2 and len(h.ws.load().panels) == 3
    with pytest.warns(UserWarning, match="write its prompt first"):
        assert h.add(out[w.story], 0, "  ") == h.unchanged()


def test_the_canvas_ignores_its_echo_and_saves_real_drawings(page) -> None:
    h, w = page
    story = h.ws.load()
    echo = {"background": Image.new("RGB", (512, 512), "white"), "layers": [], "composite": None}
    assert h.draw(story, 2, echo) == h.unchanged()
    assert h.upload_drawing(story, 2, echo) == h.unchanged()  # the page's own white paper, reported as an upload
    out = h.draw(story, 2, {**echo, "composite": stroke()})
    ref = out[w.story].panels[2].sketch
    assert ref.startswith("sketches/") and (h.ws.root / ref).is_file() and out[w.canny] is not None
    assert h.draw(out[w.story], 2, {**echo, "composite": stroke()}) == h.unchanged()  # the same drawing again
    cleared = h.draw(out[w.story], 2, {**echo, "composite": Image.new("RGB", (512, 512), "white")})
    assert cleared[w.story].panels[2].sketch is None and cleared[w.canny] is None
    uploaded = h.upload_drawing(story, 2, {**echo, "background": stroke(700)})
    assert uploaded[w.story].panels[2].sketch.startswith("sketches/") and uploaded[w.editor]["layers"]  # shown cleaned


def test_sketch_edits_make_new_files_and_need_a_sketch(page) -> None:
    h, w = page
    story = h.ws.load()
    out = h.edit_sketch(story, 0, "flip", axis="horizontal")
    assert out[w.story].panels[0].sketch != story.panels[0].sketch and (h.ws.root / story.panels[0].sketch).exists()
    with pytest.warns(UserWarning, match="no sketch to change"):
        assert h.edit_sketch(story, 2, "flip", axis="horizontal") == h.unchanged()


def test_settings_problems_are_shown_beside_the_form_and_not_applied(page) -> None:
    h, w = page
    story = h.ws.load()
    data = {w.story: story, w.selector: 0} | dict(zip(w.settings, values_of(story.settings), strict=True))
    out = h.edit_settings(data | {setting(w, "width"): 30})
    assert "multiple of 8" in out[w.settings_note] and h.ws.load() == story
    out = h.edit_settings(data | {setting(w, "width"): 48})
    assert out[w.story].settings.width == 48 and out[w.settings_note] == "" and h.ws.load().settings.width == 48


def form(h: Handlers, w: Widgets, story, extra: dict | None = None) -> dict:
    """Every form field as the page would send it, with ``extra`` overriding some."""
    data = {w.story: story, w.keep_memory: True, w.selector: 0} | h.meta_view(story)
    data |= {w.prompt: story.panels[0].prompt, w.caption: story.panels[0].caption or "", w.seed: story.panels[0].seed}
    return data | dict(zip(w.settings, values_of(story.settings), strict=True)) | (extra or {})


def test_generate_streams_progress_then_results_and_regenerate_needs_a_render(page) -> None:
    h, w = page
    story = h.ws.load()
    with pytest.raises(gr.Error, match="Generate the whole story first"):
        list(h.regenerate(form(h, w, story, {w.regen_panel: 1})))
    updates = list(h.generate(form(h, w, story, {w.title: "Renamed"})))
    assert updates[0][w.story].title == "Renamed"  # fields still being typed are committed first
    assert any("step" in u.get(w.status, "") for u in updates)
    final = updates[-1]
    assert final[w.status].startswith("**Done**") and len(final[w.results]) == 3 and final[w.strip]
    assert final[w.download].interactive and (h.ws.exports / "renamed.zip").is_file()
    with pytest.raises(gr.Error, match="not ready.*prompt is empty"):
        list(h.generate(form(h, w, story, {w.prompt: ""})))


def test_a_model_that_cannot_load_is_an_error_message(page, tmp_path: Path) -> None:
    h, w = page
    story = h.ws.load()
    data = form(h, w, story, {setting(w, "model"): str(tmp_path / "missing-model")})
    with pytest.raises(gr.Error, match="cannot be loaded.*does not exist"):
        list(h.generate(data))


def test_commit_form_reports_every_kind_of_problem(page) -> None:
    h, w = page
    story = h.ws.load()
    with pytest.raises(StoryError, match="used twice"):
        h.commit_form(form(h, w, story, {w.characters: "cat\ncat"}))
