"""The one real-browser test of the default run (CI): the page loads in Chromium and saves a paste.

Short on purpose (about 15 s): one page, one panel, no model. The rest of the browser tests are
slow and run with ``make test-all``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from ui_page import CHROMIUM, NO_CHROMIUM, chromium, saved, serving, sync_api, text_field, wait_until  # noqa: E402

from sketchstory.story import parse_story, save_story  # noqa: E402
from sketchstory.ui.workspace import Workspace  # noqa: E402

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)


def test_the_page_loads_and_autosaves_a_paste_and_a_backspace(tmp_path: Path) -> None:
    """Issue 20, item 1: a paste (no key press) and a Backspace are saved, not only typed characters."""
    ws = Workspace(tmp_path / "work")
    save_story(parse_story({"title": "Smoke", "panels": [{"prompt": "a wizard"}],
                            "settings": {"model": "tiny", "width": 32, "height": 32, "steps": 2}}), ws.story_path)
    with serving(ws) as url, chromium() as page:
        page.goto(url)
        prompt = text_field(page, "panel-prompt")
        sync_api.expect(prompt).to_have_value("a wizard")
        prompt.click()
        page.keyboard.press("End")
        page.keyboard.insert_text(" in a blue robe")  # what a paste does: text in, no key events
        wait_until(page, lambda: saved(ws)["panels"][0]["prompt"] == "a wizard in a blue robe", "the paste saved",
                   timeout_s=15)
        for _ in range(5):
            page.keyboard.press("Backspace")
        wait_until(page, lambda: saved(ws)["panels"][0]["prompt"] == "a wizard in a blue", "the Backspaces saved",
                   timeout_s=15)
        sync_api.expect(page.get_by_role("textbox", name="New panel's prompt")).to_be_visible()
