"""The web UI in a real browser: Debian's headless Chromium, driven by Playwright, against the served page.

One walk through the workflow on the tiny models: build a 3-panel story, take one sketch from stage-1
candidates and one from the sketch library, draw and erase on a canvas, reorder, fix a bad setting, generate,
regenerate one panel, download the zip. Screenshots of each state go to
``out/ui-screenshots`` (override with ``SKETCHSTORY_SCREENSHOTS``) for a person to look at.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from ui_page import (  # noqa: E402
    CHROMIUM,
    NO_CHROMIUM,
    open_panel,
    opened,
    saved,
    serving,
    shot,
    sync_api,
    text_field,
    type_over,
    wait_until,
)

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from sketchstory.library.index import Meta  # noqa: E402
from sketchstory.library.store import Library  # noqa: E402
from sketchstory.story import parse_story, save_story  # noqa: E402
from sketchstory.ui.workspace import Workspace  # noqa: E402


def library(root: Path) -> Path:
    """A sketch library with two sketches."""
    with Library.writer(root) as lib, lib.index.db:
        for n, (prompt, category) in enumerate([("a tall wizard hat", "clothes"), ("a sleeping cat", "animals")]):
            page = Image.new("L", (96, 96), 255)
            ImageDraw.Draw(page).ellipse((10 + 20 * n, 10, 60 + 20 * n, 80), outline=0, width=3)
            lib.add(page, Meta("sundry", prompt, (), category=category))
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Workspace]]:
    """The page on localhost, its work folder starting with a one-panel story for the tiny model."""
    tmp = tmp_path_factory.mktemp("ui")
    ws = Workspace(tmp / "work", library(tmp / "library"))
    save_story(parse_story({"title": "Untitled story", "panels": [{"prompt": "a wizard"}],
                            "settings": {"model": "tiny", "width": 32, "height": 32, "steps": 3,
                                         "guidance_scale": 5.0, "maga": {"start_step": 1, "memory": "all"}}}),
               ws.story_path)
    with serving(ws) as url:
        yield url, ws


@pytest.fixture(scope="module")
def page(served: tuple[str, Workspace]) -> Iterator[sync_api.Page]:
    with opened(served[0]) as page:
        yield page


def drag_on_canvas(page: sync_api.Page, tool: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Pick a tool ("Brush", "Erase") and drag it from ``start`` to ``end`` (offsets from the canvas centre)."""
    page.locator(f"#sketch-canvas button[aria-label='{tool}']").click()
    box = page.locator("#sketch-canvas canvas").first.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(x + start[0], y + start[1])
    page.mouse.down()
    for k in range(1, 25):
        page.mouse.move(x + start[0] + (end[0] - start[0]) * k / 24, y + start[1] + (end[1] - start[1]) * k / 24,
                        steps=2)
    page.mouse.up()


def ink(path: Path) -> int:
    return int((np.asarray(Image.open(path).convert("L")) < 128).sum())


@pytest.mark.slow  # minutes on 2 shared cores: a browser, a server and three models
def test_workflow_from_story_to_zip(page: sync_api.Page, served: tuple[str, Workspace]) -> None:
    _, ws = served
    title = text_field(page, "story-title")
    sync_api.expect(title).to_have_value("Untitled story")
    shot(page, "01-opened")

    # Build a 3-panel story.
    type_over(title, "Browser story")
    type_over(text_field(page, "panel-prompt"), "a wizard in a blue robe in a forest")
    for prompt in ("the wizard finds a tall hat", "the wizard meets a cat"):
        text_field(page, "new-panel-prompt").fill(prompt)  # read when Add is clicked: no keystrokes needed
        page.locator("#add-panel").click()
        sync_api.expect(text_field(page, "panel-prompt")).to_have_value(prompt)
    wait_until(page, lambda: [p["prompt"] for p in saved(ws)["panels"]] == [
        "a wizard in a blue robe in a forest", "the wizard finds a tall hat", "the wizard meets a cat"],
        "three panels autosaved")
    assert saved(ws)["title"] == "Browser story"
    sync_api.expect(page.locator("#panel-selector label")).to_have_count(3)

    # Panel 1 takes a stage-1 candidate.
    open_panel(page, 1, "a wizard in a blue robe in a forest")
    page.get_by_role("tab", name="Candidates (stage 1)").click()
    sync_api.expect(page.locator("#s1-model input")).to_have_value("tiny")
    type_over(page.locator("#s1-count input[type=number]"), "2")
    page.locator("#s1-make").click()
    sync_api.expect(page.locator("#s1-gallery img")).to_have_count(2, timeout=120_000)
    sync_api.expect(page.locator("#s1-note")).to_contain_text("2 candidates for panel 1")
    shot(page, "02-candidates")
    page.locator("#s1-gallery img").first.click()
    wait_until(page, lambda: (saved(ws)["panels"][0].get("sketch") or "").startswith("sketches/"), "candidate chosen")

    # Panel 3 takes a sketch found in the library.
    open_panel(page, 3, "the wizard meets a cat")
    page.get_by_role("tab", name="Library").click()
    text_field(page, "lib-query").fill("cat")
    page.locator("#lib-search").click()
    sync_api.expect(page.locator("#lib-gallery img")).to_have_count(1)
    page.locator("#lib-gallery img").first.click()
    wait_until(page, lambda: (saved(ws)["panels"][2].get("sketch") or "").startswith("sketches/"), "library pick")
    sync_api.expect(page.locator("#canny-preview img")).to_be_visible()
    shot(page, "03-library")

    # Draw a stroke on panel 2's canvas: it becomes the panel's sketch, with a Canny preview.
    open_panel(page, 2, "the wizard finds a tall hat")
    page.get_by_role("tab", name="Draw").click()
    drag_on_canvas(page, "Brush", (-120, -60), (120, 60))
    wait_until(page, lambda: saved(ws)["panels"][1].get("sketch") is not None, "the drawing saved as panel 2's sketch")
    drawn = saved(ws)["panels"][1]["sketch"]
    sync_api.expect(page.locator("#canny-preview img")).to_be_visible()
    # Erase across the middle of the stroke: the sketch loses ink.
    drag_on_canvas(page, "Erase", (-30, 40), (30, -40))
    wait_until(page, lambda: saved(ws)["panels"][1]["sketch"] != drawn, "the erased drawing saved")
    sketch_ref = saved(ws)["panels"][1]["sketch"]
    assert 0 < ink(ws.root / sketch_ref) < ink(ws.root / drawn)
    shot(page, "04-drawn-and-erased")

    # Move panel 2 one place later: its sketch and prompt go with it.
    page.locator("#move-right").click()
    wait_until(page, lambda: saved(ws)["panels"][2]["prompt"] == "the wizard finds a tall hat", "panel 2 moved to 3")
    panels = saved(ws)["panels"]
    assert panels[2]["sketch"] == sketch_ref and panels[1]["prompt"] == "the wizard meets a cat"
    sync_api.expect(page.locator("#panel-selector input[type=radio]").nth(2)).to_be_checked()
    shot(page, "05-reordered")

    # A bad setting is explained beside the form and not applied; a good one is applied.
    page.get_by_role("tab", name="2 · Render").click()
    type_over(text_field(page, "setting-width"), "30")
    sync_api.expect(page.locator("#settings-note")).to_contain_text("multiple of 8")
    shot(page, "06-bad-setting")
    assert saved(ws)["settings"]["width"] == 32
    type_over(text_field(page, "setting-width"), "32")
    type_over(page.locator("#setting-steps input[type=number]"), "2")
    wait_until(page, lambda: saved(ws)["settings"]["steps"] == 2, "steps set to 2")
    sync_api.expect(page.locator("#settings-note")).to_have_text("")

    # Generate: live progress, then the panels, the strip and the download.
    page.locator("#generate").click()
    sync_api.expect(page.locator("#render-status")).to_contain_text("Done", timeout=120_000)
    sync_api.expect(page.locator("#render-status")).to_contain_text("3 rendered")
    sync_api.expect(page.locator("#results img")).to_have_count(3)
    sync_api.expect(page.locator("#strip img")).to_be_visible()
    shot(page, "07-generated")
    before = {n: (ws.out / "panels" / f"panel_{n:02d}.png").read_bytes() for n in range(3)}

    # Regenerate panel 2 only (picked by clicking it in the results).
    page.locator("#results img").nth(1).click()
    sync_api.expect(page.locator("#regen-panel input")).to_have_value("Panel 2")
    page.locator("#regenerate").click()
    sync_api.expect(page.locator("#render-status")).to_contain_text("1 rendered, 2 kept", timeout=120_000)
    after = {n: (ws.out / "panels" / f"panel_{n:02d}.png").read_bytes() for n in range(3)}
    assert after[1] != before[1] and after[0] == before[0] and after[2] == before[2]
    shot(page, "08-regenerated")

    # Download everything as one zip: a story folder with the panels, the strip and the sketches.
    with page.expect_download() as download:
        page.locator("#download").click()
    target = ws.root.parent / "download.zip"
    download.value.save_as(target)
    with zipfile.ZipFile(target) as zf:
        names = set(zf.namelist())
        story = json.loads(zf.read("browser-story/story.json"))
    assert {f"browser-story/panels/panel_{n:02d}.png" for n in range(3)} <= names
    assert {"browser-story/strip.png", "browser-story/run.json", f"browser-story/{sketch_ref}"} <= names
    assert [p["prompt"] for p in story["panels"]][2] == "the wizard finds a tall hat"
    assert story["panels"][2]["sketch"] == sketch_ref
