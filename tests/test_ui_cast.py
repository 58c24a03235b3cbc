"""The page's *Characters* tab, setting field and reference pictures (issue 18), called without a browser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")

from sketchstory.models.specs import REGISTRY, native_settings  # noqa: E402
from sketchstory.story import StoryError, load_story  # noqa: E402
from sketchstory.ui.cast_view import (  # noqa: E402
    COLOURS,
    box_from_corners,
    click_point,
    parse_box,
    picture_size,
    placement_picture,
)
from sketchstory.ui.handlers import Handlers  # noqa: E402
from sketchstory.ui.settings_form import FIELDS, apply_settings, values_of  # noqa: E402
from sketchstory.ui.widgets import Widgets  # noqa: E402


@pytest.fixture
def page(ui_page: tuple[Handlers, Widgets]) -> tuple[Handlers, Widgets]:
    """The page on a story with a second character, the fox."""
    h, _ = ui_page
    h.edit_meta(h.ws.load(), "Test story", "", "wizard: in a red cape\nfox: a red fox", "")
    return ui_page


def clicked(x: int, y: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": [x, y], "value": None, "selected": True})


def test_boxes_come_from_two_corners_in_either_order_or_four_typed_numbers() -> None:
    assert box_from_corners((0.6, 0.9), (0.1, 0.2)) == (0.1, 0.2, 0.6, 0.9)
    with pytest.raises(StoryError, match="two opposite corners"):
        box_from_corners((0.1, 0.2), (0.11, 0.9))  # a line, not a box
    assert parse_box("[0.05, 0.2, 0.5 0.95]") == (0.05, 0.2, 0.5, 0.95)
    for text, problem in [("0.1, 0.2, 0.5", "3 numbers, not 4"), ("a b c d", "not four numbers"),
                          ("0.5, 0.2, 0.1, 0.9", "empty"), ("10, 20, 300, 400", "pixels?")]:
        with pytest.raises(StoryError, match=problem):
            parse_box(text)


def test_a_click_is_a_point_of_the_panel_whatever_its_aspect(page) -> None:
    h, _ = page
    story = h.ws.load().with_settings({"width": 128, "height": 64})
    w, ht = picture_size(story.settings)
    assert (w, ht) == (384, 192)
    assert click_point([96, 48], story.settings) == (0.25, 0.25)
    assert click_point([999, -3], story.settings) == (1.0, 0.0)  # clamped into the panel


def test_clicking_two_corners_places_the_character_and_draws_its_box(page) -> None:
    h, w = page
    story = h.ws.load()
    out = h.cast.members(story, 0, ["fox", "wizard"])
    story = out[w.story]
    assert [p.name for p in story.placements(0)] == ["wizard", "fox"]  # the story's order
    assert out[w.cast_members].value == ["wizard", "fox"]
    size = picture_size(story.settings)
    first = h.cast.click(story, 0, "fox", None, clicked(size[0] // 2, size[1] // 4))
    assert w.story not in first and first[w.cast_corner] == (0.5, 0.25) and "opposite corner" in first[w.panel_note]
    out = h.cast.click(story, 0, "fox", list(first[w.cast_corner]), clicked(size[0] - 1, size[1] - 1))
    saved = load_story(h.ws.story_path)
    assert saved.panels[0].characters[1].box == pytest.approx((0.5, 0.25, 1.0, 1.0))
    assert saved.version == 2 and out[w.cast_box] == "0.5, 0.25, 1, 1" and out[w.cast_corner] is None
    picture = np.asarray(out[w.cast_picture])
    fox = COLOURS[1]
    assert (picture[size[1] // 4 + 1, size[0] // 2 + 20] == fox).all()  # the box's top edge, in fox's colour
    assert not (picture[5, 5] == fox).all()


def test_typed_boxes_unboxing_and_mistakes_keep_the_story_valid(page) -> None:
    h, w = page
    story = h.cast.members(h.ws.load(), 1, ["wizard", "fox"])[h.w.story]
    story = h.cast.place_typed(story, 1, "wizard", "0.05, 0.2, 0.5, 0.95")[w.story]
    assert story.placements(1)[0].box == (0.05, 0.2, 0.5, 0.95)
    out = h.cast.place_typed(story, 1, "wizard", "0.5, 0.2")
    assert w.story not in out and "2 numbers, not 4" in out[w.panel_note]
    assert load_story(h.ws.story_path).placements(1)[0].box == (0.05, 0.2, 0.5, 0.95)  # the file kept it
    story = h.cast.unbox(story, 1, "wizard")[w.story]
    assert not story.placements(1)[0].placed and load_story(h.ws.story_path) == story
    out = h.cast.members(story, 1, [])
    assert out[w.story].panels[1].characters == () and "No character" in out[w.cast_legend]


def test_the_setting_field_saves_and_an_echo_does_nothing(page) -> None:
    h, w = page
    story = h.ws.load()
    out = h.cast.edit_setting(story, 2, " castle ")
    assert out[w.story].panels[2].setting == "castle" and load_story(h.ws.story_path).version == 2
    assert h.cast.edit_setting(out[w.story], 2, "castle") == {w.story: gr.skip()}
    assert h.cast.edit_setting(out[w.story], 2, "")[w.story].panels[2].setting is None
    assert h.panel_view(out[w.story], 2)[w.setting] == "castle"  # opening a panel shows its setting


def test_a_reference_picture_is_copied_in_shown_exported_and_removed(page, tmp_path: Path) -> None:
    h, w = page
    upload = tmp_path / "upload" / "fox photo.png"
    upload.parent.mkdir()
    Image.new("RGB", (40, 30), (200, 80, 20)).save(upload)
    out = h.cast.upload_reference(h.ws.load(), "fox", str(upload))
    ref = out[w.story].characters[1].reference
    assert ref.startswith("refs/") and (h.ws.root / ref).read_bytes() == upload.read_bytes()
    assert out[w.ref_image] == str(h.ws.root / ref) and "follows this picture" in out[w.ref_note]
    upload.unlink()  # the browser's temporary file goes; the story keeps its own copy
    exported = h.ws.export_story(load_story(h.ws.story_path), tmp_path / "saved")
    assert (exported.parent / ref).is_file() and load_story(exported).characters[1].reference == ref
    bad = tmp_path / "upload" / "notes.png"
    bad.write_text("not a picture")
    out = h.cast.upload_reference(out[w.story], "fox", str(bad))
    assert w.story not in out and "Not applied" in out[w.ref_note]
    out = h.cast.clear_reference(load_story(h.ws.story_path), "fox")
    assert out[w.story].characters[1].reference is None and out[w.ref_image] is None


def test_the_settings_form_shows_and_sets_how_backgrounds_share(page) -> None:
    h, _ = page
    story = h.ws.load()
    values = values_of(story.settings)  # the default is left out of the story's dump; the form still shows it
    keys = [f.key for f in FIELDS]
    assert values[keys.index("maga.background")] == "setting"
    values[keys.index("maga.background")] = "none"
    story = apply_settings(story, values)
    assert story.settings.maga.background == "none" and story.version == 2
    assert json.loads(story.to_json())["settings"]["maga"]["background"] == "none"
    assert values_of(story.settings) == values


def test_placing_the_first_character_on_the_demo_model_takes_its_routed_maga_settings(page) -> None:
    h, w = page
    story = h.ws.load().with_settings({"model": "demo"} | {k: v for k, v in native_settings("demo").items()})
    out = h.cast.members(story, 0, ["wizard"])
    assert out[w.story].version == 1 and w.settings_note not in out  # a name alone does not route MAGA
    out = h.cast.place_typed(out[w.story], 0, "wizard", "0.05, 0.2, 0.5, 0.95")
    routed = REGISTRY["demo"].maga_routed
    assert out[w.story].settings.maga.start_layer == routed["start_layer"] == load_story(h.ws.story_path).settings.maga.start_layer
    assert "placed characters" in out[w.settings_note]
    shown = dict(zip([f.key for f in FIELDS], [out[c] for c in w.settings], strict=True))
    assert shown["maga.start_layer"] == routed["start_layer"]
    assert w.settings_note not in h.cast.members(out[w.story], 1, ["wizard"])  # still routed: no note
    out = h.cast.unbox(out[w.story], 0, "wizard")  # nobody placed any more: the plain settings again
    assert out[w.story].version == 1 and out[w.story].settings.maga.start_layer == REGISTRY["demo"].maga["start_layer"]
