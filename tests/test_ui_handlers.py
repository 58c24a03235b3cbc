"""The page's event handlers called directly (no server, no browser): what each returns to the page."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

gr = pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")

from sketchstory.story import StoryError  # noqa: E402
from sketchstory.ui.handlers import Handlers  # noqa: E402
from sketchstory.ui.settings_form import FIELDS, values_of  # noqa: E402
from sketchstory.ui.widgets import Widgets  # noqa: E402


@pytest.fixture
def page(ui_page: tuple[Handlers, Widgets]) -> tuple[Handlers, Widgets]:
    return ui_page


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
    assert out[w.selector].value == 0 and out[w.editor]["value"]["layers"]  # panel 1 has a sketch
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
    cleared = h.remove_sketch(out[w.story], 2)
    assert cleared[w.story].panels[2].sketch is None and cleared[w.canny] is None
    uploaded = h.upload_drawing(story, 2, {**echo, "background": stroke(700)})
    assert uploaded[w.story].panels[2].sketch.startswith("sketches/")
    assert uploaded[w.editor]["value"]["layers"]  # shown cleaned


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


# --- issue 20: never lose or silently change the user's work ------------------------------------


def test_an_empty_canvas_keeps_the_sketch_and_says_why(page) -> None:
    """Item 3: a file the browser cannot decode empties the canvas; the panel keeps its sketch."""
    h, w = page
    story = h.ws.load()
    before = story.panels[0].sketch
    out = h.draw(story, 0, {"background": Image.new("RGB", (512, 512), "white"), "layers": [],
                            "composite": Image.new("RGB", (512, 512), "white")})
    assert w.story not in out and h.ws.load().panels[0].sketch == before
    assert "sketch is kept" in out[w.panel_note] and out[w.editor]["value"]["layers"]  # shown again on the canvas


def test_a_huge_upload_is_reduced_and_saved_quickly(page) -> None:
    """Item 4: a 6000 x 6000 picture becomes the sketch in seconds, not minutes."""
    import time

    h, w = page
    story = h.ws.load()
    big = Image.new("RGB", (6000, 6000), "white")
    ImageDraw.Draw(big).ellipse((600, 600, 5400, 5400), outline="black", width=30)
    started = time.perf_counter()
    out = h.upload_drawing(story, 2, {"background": big, "layers": [], "composite": None})
    assert time.perf_counter() - started < 10
    assert out[w.story].panels[2].sketch.startswith("sketches/") and out[w.editor]["value"]["layers"]


def chosen(panel: int, picture: Image.Image | bytes | None, name: str = "drawing.png") -> str:
    """What the page's script sends for a picture chosen on ``panel`` (see app.JS)."""
    if isinstance(picture, Image.Image):
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        picture = buffer.getvalue()
    url = None if picture is None else "data:image/png;base64," + base64.b64encode(picture).decode()
    return json.dumps({"panel": panel, "name": name, "picture": url})


def test_a_chosen_picture_lands_on_the_panel_it_was_chosen_on(page) -> None:
    """Item 4: the page's script sends the picture with its panel; the open panel's view changes only if it is that one."""
    h, w = page
    story = h.ws.load()
    assert h.chosen_picture(story, 0, "") == h.unchanged()  # the button pressed with no picture waiting
    out = h.chosen_picture(story, 0, chosen(2, stroke(700)))  # chosen on panel 3, panel 1 opened meanwhile
    assert out[w.story].panels[2].sketch.startswith("sketches/") and h.ws.load() == out[w.story]
    assert set(out) == {w.story, w.storyboard}  # panel 1's canvas, fields and radio stay as they are
    out = h.chosen_picture(out[w.story], 0, chosen(0, stroke()))
    assert out[w.story].panels[0].sketch != story.panels[0].sketch
    assert out[w.editor]["value"]["layers"] and out[w.canny] is not None and w.selector not in out
    with pytest.warns(UserWarning, match="panel was deleted"):
        assert h.chosen_picture(story, 0, chosen(7, stroke())) == h.unchanged()


def test_a_chosen_file_that_is_not_a_picture_keeps_the_sketch(page) -> None:
    h, w = page
    story = h.ws.load()
    out = h.chosen_picture(story, 0, chosen(0, b"just some notes", "notes.png"))
    assert set(out) == {w.panel_note} and "notes.png cannot be Panel 1's sketch, so its sketch is kept" in (
        out[w.panel_note])
    assert "not a picture" in out[w.panel_note] and "/tmp" not in out[w.panel_note]
    with pytest.warns(UserWarning, match="big.tif cannot be Panel 2's sketch.*larger than 25 MB"):
        assert h.chosen_picture(story, 0, chosen(1, None, "big.tif")) == h.unchanged()
    with pytest.warns(UserWarning, match="no lines"):
        h.chosen_picture(story, 1, chosen(2, Image.new("RGB", (64, 64), "white")))
    assert h.ws.load() == story


def test_seeds_round_trip_exactly_through_the_page(page) -> None:
    """Item 2: seeds are shown as text (exact at any size) and the page's new seeds stay below 2**53."""
    from sketchstory.ui import state

    h, w = page
    story = h.ws.load()
    out = h.edit_panel(story, 0, story.panels[0].prompt, "", "8548021682996083404")
    assert out[w.story].panels[0].seed == 8548021682996083404
    assert h.panel_view(out[w.story], 0)[w.seed] == "8548021682996083404"
    assert "not a seed" in h.edit_panel(story, 0, "p", "", "12.5e3")[w.panel_note]
    reseeded = story
    for _ in range(20):
        reseeded = state.reseed(reseeded, 0)
        assert reseeded.panels[0].seed < 2**53
    values = values_of(story.settings)
    values[[f.key for f in FIELDS].index("seed")] = "9007199254740993"  # 2**53 + 1: a float would round it
    data = {w.story: story, w.selector: 0} | dict(zip(w.settings, values, strict=True))
    assert h.edit_settings(data)[w.story].settings.seed == 2**53 + 1
    assert h.edit_settings(data | {setting(w, "seed"): 0})[w.story].settings.seed == 0  # a number: still a seed
    assert "not a seed" in h.edit_settings(data | {setting(w, "seed"): "-3"})[w.settings_note]


def test_delete_goes_to_the_trash_and_undo_brings_it_back(page) -> None:
    """Item 9: a deleted panel (prompt, sketch, seed) comes back where it was."""
    h, w = page
    story = h.ws.load()
    second, seed = story.panels[1], story.panel_seed(1)
    out = h.delete(story, 1)
    assert len(out[w.story].panels) == 2 and "Undo delete" in out[w.panel_note] and out[w.undo_btn].interactive
    back = h.undo_delete(out[w.story])
    restored = back[w.story]
    assert [p.prompt for p in restored.panels] == [p.prompt for p in story.panels]
    assert restored.panels[1].sketch == second.sketch and restored.panel_seed(1) == seed
    assert back[w.selector].value == 1 and h.ws.load() == restored and not back[w.undo_btn].interactive
    with pytest.warns(UserWarning, match="Nothing to undo"):
        h.undo_delete(restored)


def test_opening_a_story_keeps_the_old_one_and_clears_its_results(page, tmp_path: Path) -> None:
    """Items 6 and 7: the replaced story (and its render) stay recoverable; no stale strip or zip is offered."""
    from sketchstory.story import load_story, parse_story, save_story

    h, w = page
    story = h.ws.load()
    list(h.generate(form(h, w, story)))
    assert h.ws.results() is not None
    other = tmp_path / "other.json"
    save_story(parse_story({"title": "Other", "panels": [{"prompt": "only one"}]}), other)
    out = h.open_path(str(other))
    assert out[w.story].title == "Other" and out[w.selector].value == 0 and out[w.selector].choices == [("Panel 1", 0)]
    assert out[w.results] == [] and out[w.strip] is None and not out[w.download].interactive
    assert out[w.status] == "Nothing rendered yet." and "previous" in out[w.panel_note]
    kept = h.ws.root / "previous" / "1"
    assert (kept / "out" / "strip.png").is_file()
    assert load_story(kept / "story.json") == story  # sketches copied alongside: it opens as it was


def test_a_stale_panel_choice_is_ignored_not_an_error(page) -> None:
    """Item 6: an event sent with panel 3 after a 1-panel story opened is dropped, not a Radio error."""
    h, w = page
    story = h.ws.load()
    one = story.with_panels(story.panels[:1])
    choices = w.selector.choices
    w.selector.choices = [("Panel 1", 0)]
    try:
        assert w.selector.preprocess(2) is None and w.selector.preprocess(0) == 0
    finally:
        w.selector.choices = choices
    assert h.edit_panel(one, None, "x", "", "") == h.unchanged()
    kept = "The story you had is kept in `previous/1`"
    assert h.edit_panel(one, 0, one.panels[0].prompt, one.panels[0].caption or "", "10", kept) == h.unchanged()
    refused = h.edit_panel(one, 0, "", "", "")[w.panel_note]
    assert h.edit_panel(one, 0, one.panels[0].prompt, one.panels[0].caption or "", "10", refused)[w.panel_note] == ""
    assert h.draw(one, None, {"composite": stroke()}) == h.unchanged()
    assert h.delete(story, None) == h.unchanged() and h.move(story, None, delta=1) == h.unchanged()
    assert h.edit_sketch(story, None, "flip", axis="horizontal") == h.unchanged() and h.ws.load() == story


def test_stop_leaves_no_stale_strip_or_zip_and_reload_describes_the_run(page, monkeypatch) -> None:
    """Item 7: after Stop the old strip and zip are not offered; a reload describes the run that was made."""
    from sketchstory.ui.render import Cancelled

    h, w = page
    story = h.ws.load()
    list(h.generate(form(h, w, story)))
    assert "3 of 3 panels rendered" in h.load()[w.status]
    list(h.regenerate(form(h, w, story, {w.regen_panel: 1})))
    assert "1 of 3 panels rendered (2 kept)" in h.load()[w.status]

    def stopped(*args, **kwargs):
        raise Cancelled()
        yield

    monkeypatch.setattr(h.renderer, "run", stopped)
    final = list(h.generate(form(h, w, story, {w.prompt: "changed"})))[-1]
    assert "Stopped" in final[w.status] and final[w.strip] is None and not final[w.download].interactive
    assert "stopped" in h.load()[w.status]


def test_results_are_served_from_copies_that_never_change(page) -> None:
    """Item 10: the browser fetches copies named by content, never a file a render is rewriting."""
    h, w = page
    story = h.ws.load()
    final = list(h.generate(form(h, w, story)))[-1]
    served = [Path(p) for p, _ in final[w.results]] + [Path(final[w.strip])]
    assert all((h.ws.root / "shown") in p.parents for p in served)
    assert final[w.download].value["orig_name"] == "test-story.zip"  # the download keeps its name


def test_expected_problems_print_no_traceback(page) -> None:
    """Item 10: "the story is not ready" and friends are shown in the page, not logged with a traceback."""
    h, w = page
    story = h.ws.load()
    with pytest.raises(gr.Error) as raised:
        list(h.generate(form(h, w, story, {w.prompt: ""})))
    assert raised.value.print_exception is False
    with pytest.raises(gr.Error) as raised:
        list(h.regenerate(form(h, w, story, {w.regen_panel: 1})))
    assert raised.value.print_exception is False


def test_a_story_without_settings_gets_its_models_native_size_and_steps(page, tmp_path: Path) -> None:
    """Item 8: no settings means the demo model at 64 px and 20 steps, and switching model follows it."""
    from sketchstory.story import parse_story, save_story

    h, w = page
    bare = tmp_path / "bare.json"
    bare.write_text('{"panels": [{"prompt": "a wizard"}]}')
    story, _ = h.ws.import_story(bare)
    assert (story.settings.width, story.settings.height, story.settings.steps) == (64, 64, 20)
    save_story(parse_story({"panels": [{"prompt": "a"}], "settings": {"width": 128}}), bare)
    assert h.ws.import_story(bare)[0].settings.width == 128  # what the file says is kept
    values = values_of(story.settings)
    values[[f.key for f in FIELDS].index("model")] = "tiny"
    out = h.edit_settings({w.story: story, w.selector: 0} | dict(zip(w.settings, values, strict=True)))
    assert (out[w.story].settings.width, out[w.story].settings.steps) == (32, 2)
    assert "follow the `tiny` model" in out[w.settings_note]
