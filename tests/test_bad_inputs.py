"""Every case of the bad-input corpus (tests/badinputs.py) through the command line, the Python API
and the web UI's handlers: the documented exit code or exception, a specific message, no traceback,
and no half-written file in the output folder."""

from __future__ import annotations

import io
import json
import re
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sketchstory.pipeline import runner
import sketchstory.models.cache as model_cache
from badinputs import API, CHECK, CLI, NO_LINES, ODD_FORMATS, UI, Case, Inputs, corpus, story
from conftest import write_story
from sketchstory.cli import main
from sketchstory.outputs import MARKER
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story

CASES = corpus()


def cases(surface: str, also: Any = None) -> list[Any]:
    return [pytest.param(c, id=c.name) for c in CASES if surface in c.surfaces and (also is None or also(c))]


@pytest.fixture(autouse=True)
def offline_with_one_tiny_model(monkeypatch: pytest.MonkeyPatch, tiny) -> None:
    """No network; the tiny model is built once, not once per run (other models load for real)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real = runner.load

    def load(spec, device=None, **kwargs):
        return tiny if spec.base == "tiny" and device in (None, "cpu") else real(spec, device, **kwargs)

    monkeypatch.setattr(runner, "load", load)
    monkeypatch.setattr(model_cache, "load", load)


def prepared(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Inputs:
    inputs = case.build(tmp_path)
    if case.fault is not None:
        case.fault(monkeypatch, inputs)
    return inputs


def assert_only_complete_files(folder: Path) -> None:
    """No temporary leftovers; every picture decodes and every JSON file parses."""
    if not folder.is_dir():
        return
    for path in (p for p in folder.rglob("*") if p.is_file() and p.name != MARKER):
        assert not path.name.startswith(".") and ".part" not in path.name and path.suffix != ".tmp", path
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text())


def run_cli(argv: list[str], caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    """Exit code and everything the command said: stdout, stderr and its log."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's answer to a malformed flag
            code = e.code
    return code, out.getvalue() + err.getvalue() + caplog.text


@pytest.mark.parametrize("case", cases(CLI))
def test_generate_answers_clearly(case: Case, tmp_path: Path, monkeypatch, caplog) -> None:
    inputs = prepared(case, tmp_path, monkeypatch)
    code, said = run_cli(["generate", str(inputs.story), "-o", str(inputs.out), "-q", *inputs.flags], caplog)
    assert code == case.code, said
    assert case.expect(CLI) in said and "Traceback" not in said, said
    assert_only_complete_files(inputs.out)


@pytest.mark.parametrize("case", cases(CHECK))
def test_check_answers_clearly(case: Case, tmp_path: Path, monkeypatch, caplog) -> None:
    inputs = prepared(case, tmp_path, monkeypatch)
    out_existed = inputs.out.exists()
    code, said = run_cli(["check", str(inputs.story)], caplog)
    if case.check:
        assert code == case.code and case.expect(CHECK) in said, said
    else:  # a model or output problem: check loads no model and writes nothing
        assert code == 0 and ": ok, " in said, said
    assert "Traceback" not in said
    assert inputs.out.exists() == out_existed  # check writes nothing


@pytest.mark.parametrize("case", cases(API))
def test_api_raises_the_documented_error(case: Case, tmp_path: Path, monkeypatch) -> None:
    inputs = prepared(case, tmp_path, monkeypatch)
    options = RunOptions(progress=False, **inputs.options)
    if case.error is None:
        report = generate(load_story(inputs.story), inputs.story.parent, inputs.out, options)
        assert not case.warns or any(case.expect(API) in w for w in report.warnings), report.warnings
    else:
        with pytest.raises(case.error) as raised:
            generate(load_story(inputs.story), inputs.story.parent, inputs.out, options)
        assert case.expect(API) in str(raised.value)
    assert_only_complete_files(inputs.out)


# --- the web UI's handlers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_widgets():
    gr = pytest.importorskip("gradio", reason="the web UI needs the 'ui' extra (gradio)")
    from sketchstory.ui.widgets import build_widgets

    with gr.Blocks():
        return build_widgets("work")


def handlers(page_widgets, tmp_path: Path, device: str | None = None):
    from sketchstory.ui.handlers import Handlers
    from sketchstory.ui.render import Renderer
    from sketchstory.ui.workspace import Workspace

    h = Handlers(Workspace(tmp_path / "work"), Renderer(device), page_widgets)
    h.load()
    return h


def shown(caught: list[warnings.WarningMessage]) -> list[str]:
    """The warnings the page showed (gr.Warning), not other libraries' warnings."""
    return [str(w.message) for w in caught if "gradio" in w.filename]


@pytest.mark.parametrize("case", cases(UI))
def test_page_answers_clearly(case: Case, tmp_path: Path, monkeypatch, page_widgets) -> None:
    """Open the story file in the page; if it opens without problems, render it."""
    import gradio as gr
    from test_ui_handlers import form

    inputs = prepared(case, tmp_path, monkeypatch)
    h, said = handlers(page_widgets, tmp_path, inputs.options.get("device")), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            h.open_path(str(inputs.story))
            if not shown(caught):
                said.append(list(h.generate(form(h, page_widgets, h.ws.load())))[-1][page_widgets.status])
        except gr.Error as e:
            said.append(str(e))
    said += shown(caught)
    assert any(case.expect(UI) in s for s in said), said
    assert not any("Traceback" in s for s in said)
    assert_only_complete_files(h.ws.out)


@pytest.mark.parametrize("case", cases(UI, lambda c: c.setting is not None))
def test_page_settings_form_refuses_impossible_settings(case: Case, tmp_path: Path, page_widgets) -> None:
    import gradio as gr
    from test_ui_handlers import form, setting

    h, w = handlers(page_widgets, tmp_path), page_widgets
    h.open_path(str(story()(tmp_path).story))
    before = h.ws.load()
    key, value = case.setting
    data = form(h, w, before, {setting(w, key): value})
    assert case.expect(UI) in h.edit_settings(data)[w.settings_note]
    with pytest.raises(gr.Error, match=re.escape(case.expect(UI))):
        list(h.generate(data))
    assert h.ws.load() == before  # the working story keeps its last valid settings


UPLOADS = [pytest.param(f"x{Path(name).suffix}", write, True, id=name) for name, write in ODD_FORMATS] + [
    # A blank white picture is left out: the editor reports its own empty page as an upload, which is ignored.
    pytest.param("x.png", write, False, id=name) for name, write in NO_LINES.items() if name != "blank white image"]


@pytest.mark.parametrize("name, write, usable", UPLOADS)
def test_page_upload_of_any_picture_gives_a_sketch_or_a_warning(name, write, usable, tmp_path, page_widgets) -> None:
    h, w = handlers(page_widgets, tmp_path), page_widgets
    write(tmp_path / name)
    with Image.open(tmp_path / name) as opened:
        upload = opened.copy()
    story_before = h.ws.load()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = h.upload_drawing(story_before, 0, {"background": upload, "layers": [], "composite": None})
    if usable:
        assert out[w.story].panels[0].sketch.startswith("sketches/") and not shown(caught)
    else:
        assert out == h.unchanged() and h.ws.load() == story_before
        assert any("cannot be a sketch" in m and "has no lines" in m for m in shown(caught)), shown(caught)


# --- the corpus itself, and long stories ------------------------------------------------------------


def test_the_corpus_covers_every_kind_of_input() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.kind for c in CASES} == {"story", "sketch", "settings", "model", "output"}
    assert all(c.code == 0 or c.error is not None or API not in c.surfaces for c in CASES)


def test_check_of_a_5000_panel_story_takes_seconds(tmp_path: Path, caplog) -> None:
    """There is no limit on the number of panels; validating thousands is quick."""
    path = write_story(tmp_path / "long", 2, steps=2)
    doc = json.loads(path.read_text())
    doc["panels"] = [{"prompt": f"the wizard, scene {n}", "sketch": "sketches/00.png" if n % 100 == 0 else None}
                     for n in range(5000)]
    path.write_text(json.dumps(doc))
    start = time.perf_counter()
    code, said = run_cli(["check", str(path)], caplog)
    assert code == 0 and "5000 panel(s)" in said, said
    assert time.perf_counter() - start < 20  # about 2 s on a busy 2-core machine
