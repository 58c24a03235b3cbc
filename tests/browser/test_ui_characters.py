"""Issue 18 in a real browser: tick who is in a panel, box a character with two clicks on its sketch,
name the panel's setting and give a character a reference picture; each lands in the autosaved story."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from ui_page import CHROMIUM, NO_CHROMIUM, opened, saved, serving, shot, sync_api, text_field, type_over, wait_until  # noqa: E402,I001

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

from conftest import write_story  # noqa: E402

from sketchstory.cast import set_character  # noqa: E402
from sketchstory.story import load_story  # noqa: E402
from sketchstory.ui.workspace import Workspace  # noqa: E402

pytestmark = pytest.mark.slow  # a server and a browser; about half a minute on 2 shared cores


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sync_api.Page, Workspace]]:
    """Chromium on the page of a 3-panel tiny story with two characters, the wizard and the fox."""
    tmp = tmp_path_factory.mktemp("uicast")
    ws = Workspace(tmp / "work")
    story = ws.import_story(write_story(tmp / "story"))[0]
    ws.save(set_character(story, ws.root, "fox", description="a red fox"))
    with serving(ws) as url, opened(url, "a young wizard stands in a forest") as page:
        yield page, ws


def test_ticking_and_two_clicks_place_a_character_in_a_box(served) -> None:
    page, ws = served
    page.get_by_role("tab", name="Characters").click()
    page.locator("#cast-members label", has_text="fox").click()
    wait_until(page, lambda: saved(ws)["panels"][0]["characters"] == ["wizard", "fox"], "fox ticked into panel 1")
    page.locator("#cast-name input").click()
    page.get_by_role("option", name="fox").click()
    picture = page.locator("#cast-picture img")
    sync_api.expect(picture).to_be_visible()
    size = picture.bounding_box()
    picture.click(position={"x": size["width"] * 0.5, "y": size["height"] * 0.25})
    sync_api.expect(page.locator("#panel-note")).to_contain_text("opposite corner of fox")
    picture.click(position={"x": size["width"] * 0.95, "y": size["height"] * 0.9})
    wait_until(page, lambda: isinstance(saved(ws)["panels"][0]["characters"][1], dict), "fox's box saved")
    placed = load_story(ws.story_path).panels[0].characters[1]
    assert placed.name == "fox" and placed.box == pytest.approx((0.5, 0.25, 0.95, 0.9), abs=0.02)
    sync_api.expect(text_field(page, "cast-box")).to_have_value(", ".join(f"{v:g}" for v in placed.box))
    shot(page, "ui-characters")


def test_the_setting_field_is_saved(served) -> None:
    page, ws = served
    type_over(text_field(page, "panel-setting"), "forest")
    text_field(page, "panel-prompt").click()  # leaving the field commits it
    wait_until(page, lambda: saved(ws)["panels"][0].get("setting") == "forest", "the setting saved")


def test_a_reference_picture_is_uploaded_into_the_work_folder(served, tmp_path: Path) -> None:
    page, ws = served
    picture = tmp_path / "fox.png"
    Image.new("RGB", (48, 48), (210, 90, 30)).save(picture)
    page.locator("#references").get_by_text("Reference pictures").click()
    page.locator("#ref-name input").click()
    page.get_by_role("option", name="fox").click()
    page.locator("#ref-image input[type=file]").set_input_files(str(picture))
    wait_until(page, lambda: saved(ws)["characters"][1].get("reference"), "the reference saved")
    ref = saved(ws)["characters"][1]["reference"]
    assert ref.startswith("refs/") and (ws.root / ref).read_bytes()
    sync_api.expect(page.locator("#ref-note")).to_contain_text("fox follows this picture")
