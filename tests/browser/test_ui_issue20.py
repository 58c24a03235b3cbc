"""Issue 20 in a real browser: the page never loses or silently changes the user's work, and is usable by all.

Each test drives one of the issue's items through Chromium (the Python side of each is unit-tested
in tests/test_ui_handlers.py); screenshots at 1400 and 390 px go to ``SKETCHSTORY_SCREENSHOTS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from ui_page import (  # noqa: E402
    CHROMIUM,
    NO_CHROMIUM,
    axe_script,
    axe_violations,
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

from conftest import write_story  # noqa: E402

from sketchstory.story import parse_story, save_story  # noqa: E402
from sketchstory.ui.workspace import Workspace  # noqa: E402

pytestmark = pytest.mark.slow  # a server and a browser per module; about a minute on 2 shared cores

BIG_SEED = "8548021682996083404"  # a seed "Regenerate" could pick before: above 2**53


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Workspace]]:
    """The page on a 3-panel tiny story whose panels 1 and 2 have sketches."""
    tmp = tmp_path_factory.mktemp("ui20")
    ws = Workspace(tmp / "work")
    ws.save(ws.import_story(write_story(tmp / "story"))[0])
    with serving(ws) as url:
        yield url, ws


@pytest.fixture(scope="module")
def page(served: tuple[str, Workspace]) -> Iterator[sync_api.Page]:
    with opened(served[0], "a young wizard stands in a forest") as page:
        yield page


def test_cut_and_delete_in_the_caption_are_saved(page: sync_api.Page, served) -> None:
    """Item 1: edits that are not typed characters (cut, Delete) are saved too."""
    _, ws = served
    caption = text_field(page, "panel-caption")
    type_over(caption, "The wizard waits")
    wait_until(page, lambda: saved(ws)["panels"][0]["caption"] == "The wizard waits", "typed caption saved")
    caption.press("Control+a")
    caption.press("Control+x")
    wait_until(page, lambda: saved(ws)["panels"][0]["caption"] is None, "the cut saved")
    page.keyboard.insert_text("Waiting")
    caption.press("Home")
    caption.press("Delete")
    wait_until(page, lambda: saved(ws)["panels"][0]["caption"] == "aiting", "the Delete key saved")


def test_a_file_that_is_not_a_picture_keeps_the_sketch(page: sync_api.Page, served, tmp_path: Path) -> None:
    """Item 3: the browser cannot decode it; the panel keeps its sketch and the page says why."""
    _, ws = served
    before = saved(ws)["panels"][0]["sketch"]
    assert before
    fake = tmp_path / "notes.png"
    fake.write_text("this is a text file, not a picture")
    page.locator("#sketch-canvas input[type=file]").set_input_files(str(fake))
    sync_api.expect(page.locator("#panel-note")).to_contain_text("sketch is kept")
    page.wait_for_timeout(1000)  # any late canvas event has arrived
    assert saved(ws)["panels"][0]["sketch"] == before


def test_a_huge_picture_is_reduced_and_lands_on_the_panel_it_was_chosen_on(
        page: sync_api.Page, served, tmp_path: Path) -> None:
    """Item 4: a 6000 x 6000 picture chosen on Panel 1 is Panel 1's sketch in seconds; a click on Panel 3 made
    at once goes through and stays, and the radio, the canvas and the storyboard agree."""
    _, ws = served
    huge = tmp_path / "huge.png"
    picture = Image.new("L", (6000, 6000), 255)
    ImageDraw.Draw(picture).ellipse((600, 600, 5400, 5400), outline=0, width=60)
    picture.save(huge, compress_level=1)
    open_panel(page, 1, "a young wizard stands in a forest")
    before = saved(ws)["panels"][0]["sketch"]
    page.locator("#sketch-canvas input[type=file]").set_input_files(str(huge))
    # Gradio's editor painted the picture at full size: the page did not take a click for over a minute.
    page.locator("#panel-selector label", has_text="Panel 3").click(timeout=15_000)
    sync_api.expect(text_field(page, "panel-prompt")).to_have_value("the wizard meets a creature", timeout=15_000)
    wait_until(page, lambda: saved(ws)["panels"][0]["sketch"] != before, "the picture saved", timeout_s=30)
    page.wait_for_timeout(1500)  # any late event has arrived
    panels = saved(ws)["panels"]
    assert panels[2]["sketch"] is None, "the picture went to the panel opened after it was chosen"
    sketch = Image.open(ws.root / panels[0]["sketch"])
    assert max(sketch.size) <= 1024 and min(sketch.getextrema()) == 0  # reduced, and the circle is in
    sync_api.expect(page.locator("#panel-selector input:checked")).to_have_count(1)
    sync_api.expect(page.locator("#panel-selector label:has(input:checked)")).to_have_text("Panel 3")
    sync_api.expect(text_field(page, "panel-prompt")).to_have_value("the wizard meets a creature")
    sync_api.expect(page.locator("#sketch-canvas")).not_to_have_class(re.compile("has-sketch"))
    sync_api.expect(page.locator("#storyboard img").first).to_have_attribute(
        "src", re.compile(re.escape(Path(panels[0]["sketch"]).name)))
    open_panel(page, 1, "a young wizard stands in a forest")
    sync_api.expect(page.locator("#sketch-canvas")).to_have_class(re.compile("has-sketch"))


def test_the_upload_prompt_is_not_written_over_a_sketch(page: sync_api.Page) -> None:
    """A11y: with the image tool chosen, Gradio's "Upload an image" prompt is not written over a panel's sketch."""
    prompt = page.locator("#sketch-canvas .empty.wrap", has_text="select the draw tool")
    canvas = page.locator("#sketch-canvas")
    open_panel(page, 3, "the wizard meets a creature")
    sync_api.expect(canvas).not_to_have_class(re.compile("has-sketch"))
    for n, text in ((1, "a young wizard stands in a forest"), (2, "the wizard finds a blue hat")):
        open_panel(page, n, text)
        sync_api.expect(canvas).to_have_class(re.compile("has-sketch"))
        page.locator("#sketch-canvas button[aria-label=Image]").click()
        sync_api.expect(prompt).to_have_count(1)  # Gradio renders it (the image tool, no history) ...
        sync_api.expect(prompt).to_be_hidden()  # ... and the page's CSS hides it
        page.locator("#sketch-canvas button[aria-label=Brush]").click()
    open_panel(page, 1, "a young wizard stands in a forest")


def test_a_big_seed_survives_the_round_trip(page: sync_api.Page, served) -> None:
    """Item 2: a seed above 2**53 is shown and saved digit for digit, also after switching panels."""
    _, ws = served
    type_over(text_field(page, "panel-seed"), BIG_SEED)
    wait_until(page, lambda: saved(ws)["panels"][0]["seed"] == int(BIG_SEED), "the big seed saved")
    open_panel(page, 2, "the wizard finds a blue hat")
    open_panel(page, 1, "a young wizard stands in a forest")
    sync_api.expect(text_field(page, "panel-seed")).to_have_value(BIG_SEED)
    type_over(text_field(page, "panel-prompt"), "a young wizard stands in a dark forest")
    wait_until(page, lambda: saved(ws)["panels"][0]["prompt"].endswith("dark forest"), "the prompt saved")
    assert saved(ws)["panels"][0]["seed"] == int(BIG_SEED)


def test_a_deleted_panel_comes_back_with_undo(page: sync_api.Page, served) -> None:
    """Item 9: Delete moves the panel to the trash; Undo delete puts it back where it was."""
    _, ws = served
    before = saved(ws)["panels"]
    open_panel(page, 2, "the wizard finds a blue hat")
    page.locator("#delete-panel").click()
    sync_api.expect(page.locator("#panel-note")).to_contain_text("Undo delete")
    wait_until(page, lambda: len(saved(ws)["panels"]) == 2, "the panel deleted")
    page.locator("#undo-delete").click()
    wait_until(page, lambda: [p["prompt"] for p in saved(ws)["panels"]] == [p["prompt"] for p in before],
               "the panel back in its place")
    assert saved(ws)["panels"][1]["sketch"] == before[1]["sketch"]
    sync_api.expect(text_field(page, "panel-prompt")).to_have_value("the wizard finds a blue hat")


def test_every_input_is_labelled_and_axe_finds_nothing_serious(page: sync_api.Page) -> None:
    """Accessibility: named inputs, a text alternative for the canvas, labelled storyboard items, axe-core."""
    script = axe_script()
    page.get_by_role("tab", name="1 · Story and sketches").click()
    open_panel(page, 2, "the wizard finds a blue hat")
    tree = page.locator("body").aria_snapshot()
    assert 'textbox "Textbox"' not in tree
    for name in ("New panel's prompt", "Prompt", "Caption", "Seed"):
        sync_api.expect(page.get_by_role("textbox", name=re.compile("^" + name))).to_have_count(1)
    page.get_by_role("tab", name="Library").click()
    sync_api.expect(page.get_by_role("textbox", name="Search the sketch library")).to_have_count(1)
    page.get_by_role("tab", name="Draw").click()
    sync_api.expect(page.get_by_role("img", name="Sketch canvas of Panel 2")).to_have_count(1)
    sync_api.expect(page.locator("#storyboard [aria-label^='Open 1.']")).to_have_count(1)
    if script is None:
        pytest.skip("axe-core is not available: npm could not install it (offline?); set SKETCHSTORY_AXE "
                    "to an axe.min.js to run the check")
    found = axe_violations(page, script)
    page.get_by_role("tab", name="2 · Render").click()
    found += axe_violations(page, script)
    page.get_by_role("tab", name="1 · Story and sketches").click()
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", [1400, 390])
def test_generate_is_reachable_at_the_top_and_screenshots(page: sync_api.Page, width: int) -> None:
    """Small screens: on a phone the Render tab starts with Generate, not with every setting."""
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 1000})
    page.get_by_role("tab", name="1 · Story and sketches").click()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, f"issue20-{width}-story")
    page.get_by_role("tab", name="2 · Render").click()
    generate = page.locator("#generate")
    sync_api.expect(generate).to_be_visible()
    box = generate.bounding_box()
    assert box is not None and box["y"] < 400, f"Generate is {box} down the page at {width} px"
    shot(page, f"issue20-{width}-render")
    page.get_by_role("tab", name="1 · Story and sketches").click()
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_the_canvas_toolbar_does_not_cover_the_drawing_on_a_phone(page: sync_api.Page) -> None:
    """Small screens: at 390 px the drawing area starts right of the editor's floating toolbar."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.get_by_role("tab", name="1 · Story and sketches").click()
        toolbar = page.locator("#sketch-canvas .toolbar-wrap")
        canvas = page.locator("#sketch-canvas .pixi-target canvas")
        sync_api.expect(canvas).to_be_visible()
        page.wait_for_timeout(500)  # the editor resizes its canvas to the new width
        tools, drawing = toolbar.bounding_box(), canvas.bounding_box()
        assert tools is not None and drawing is not None
        assert tools["x"] + tools["width"] <= drawing["x"], f"toolbar {tools} covers the canvas {drawing}"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_opening_a_smaller_story_resets_the_panel_and_keeps_the_old_story(
        page: sync_api.Page, served, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Items 6 and 10: with panel 3 open, a 1-panel story opens without a Radio error or a traceback."""
    _, ws = served
    other = tmp_path / "one.json"
    save_story(parse_story({"title": "One panel", "panels": [{"prompt": "a lone cat"}],
                            "settings": {"model": "tiny", "width": 32, "height": 32, "steps": 2}}), other)
    open_panel(page, 3, "the wizard meets a creature")
    page.get_by_text("Open or save a story file").click()
    text_field(page, "story-path").fill(str(other))
    page.locator("#open-story").click()
    sync_api.expect(text_field(page, "panel-prompt")).to_have_value("a lone cat")
    sync_api.expect(page.locator("#panel-selector input[type=radio]")).to_have_count(1)
    sync_api.expect(page.locator("#panel-note")).to_contain_text("previous")
    page.wait_for_timeout(1500)  # the canvas and fields settle; any stale event has been handled
    assert saved(ws)["title"] == "One panel"
    assert (ws.root / "previous" / "1" / "story.json").is_file()
    sync_api.expect(page.get_by_text("not in the list of choices")).to_have_count(0)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "not in the list of choices" not in err




# The words of the render table (headers and cells) that the browser split over two lines ("pa" / "nel").
BROKEN_WORDS = """() => [...document.querySelectorAll('#render-status th, #render-status td')].flatMap(cell => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), broken = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
})"""


def test_the_results_table_does_not_break_words_on_a_phone(page: sync_api.Page) -> None:
    """Small screens: at 390 px the render table's cells wrap between words, never inside one ("pa nel")."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.get_by_role("tab", name="2 · Render").click()
        page.locator("#generate").click()
        status = page.locator("#render-status")
        sync_api.expect(status).to_contain_text("Done", timeout=120_000)
        sync_api.expect(status.locator("th")).to_have_count(3)
        shot(page, "issue20-390-results")
        assert page.evaluate(BROKEN_WORDS) == []
    finally:
        page.get_by_role("tab", name="1 · Story and sketches").click()
        page.set_viewport_size({"width": 1400, "height": 1000})
