"""Helpers for the browser tests: serve the page on localhost, drive Debian's Chromium with Playwright.

Imported by the test modules after they have skipped for a missing ``gradio``, ``playwright`` or
Chromium, so this module may import all three.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright import sync_api

from sketchstory.ui.app import build_app, launch
from sketchstory.ui.render import Renderer
from sketchstory.ui.workspace import Workspace

CHROMIUM = os.environ.get("SKETCHSTORY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "browser tests need Chromium (apt-get install chromium, or set SKETCHSTORY_CHROMIUM)"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("SKETCHSTORY_SCREENSHOTS", Path(__file__).parents[2] / "out" / "ui-screenshots"))
TIMEOUT_MS = 60_000
# axe-core (npm) is 650 kB: installed at test time into this cache, or given by SKETCHSTORY_AXE.
AXE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sketchstory" / "axe-core"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(ws: Workspace) -> Iterator[str]:
    """The page for work folder ``ws`` on a free localhost port; yields its address."""
    app = build_app(ws, Renderer("cpu", ws.library))
    port = free_port()
    launch(app, ws, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.close()


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[sync_api.Page]:
    """A fresh headless Chromium page of the given viewport."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield page
        finally:
            browser.close()


@contextmanager
def opened(url: str, prompt: str | None = None) -> Iterator[sync_api.Page]:
    """Chromium showing the page at ``url``; with ``prompt``, once the open panel's prompt shows it."""
    with chromium() as page:
        page.goto(url)
        if prompt is not None:
            sync_api.expect(text_field(page, "panel-prompt")).to_have_value(prompt)
        yield page


def shot(page: sync_api.Page, name: str, folder: Path = SHOTS, full_page: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)
    return folder / f"{name}.png"


def text_field(page: sync_api.Page, elem_id: str) -> sync_api.Locator:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def type_over(field: sync_api.Locator, text: str) -> None:
    """Replace the field's text by typing, as a person does (``fill`` skips the keystroke events)."""
    field.click()
    field.press("Control+a")
    field.press_sequentially(text)


def saved(ws: Workspace) -> dict:
    return json.loads(ws.story_path.read_text())


def wait_until(page: sync_api.Page, check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Poll ``check`` (server-side state, e.g. the autosaved story) until it holds."""
    for _ in range(int(timeout_s * 10)):
        try:
            if check():
                return
        except (OSError, ValueError, KeyError, IndexError):
            pass  # a file being replaced, or not there yet
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for: {what}")


def open_panel(page: sync_api.Page, n: int, prompt: str) -> None:
    page.locator("#panel-selector label", has_text=f"Panel {n}").click()
    sync_api.expect(text_field(page, "panel-prompt")).to_have_value(prompt)


def axe_script() -> str | None:
    """axe-core's ``axe.min.js``: $SKETCHSTORY_AXE, else the cache, else installed there by npm; else None."""
    if given := os.environ.get("SKETCHSTORY_AXE"):
        return Path(given).read_text(encoding="utf-8")
    script = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file() and (npm := shutil.which("npm")):
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([npm, "install", "--prefix", str(AXE_CACHE), "--no-save", "--no-audit", "--no-fund",
                            "--silent", "axe-core@4"], check=True, timeout=180, capture_output=True)
        except (subprocess.SubprocessError, OSError):
            return None
    return script.read_text(encoding="utf-8") if script.is_file() else None


def axe_violations(page: sync_api.Page, script: str, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core on the page; one line per violation of the given impacts (rule, impact, where)."""
    page.add_script_tag(content=script)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
            for v in result["violations"] if v["impact"] in impacts]
