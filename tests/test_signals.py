"""The command stops the way Unix tools do: quietly when its reader goes (``| head``), and on SIGTERM
as on Ctrl-C (finished work kept, exit 143, one line); and it reports only what it did."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_story
from sketchstory.cli import main
from sketchstory.library.index import Meta
from sketchstory.library.store import Library

import sketchstory

SRC = str(Path(sketchstory.__file__).parents[1])
ENV = os.environ | {"PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def sketchstory_process(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sketchstory.cli", *argv], env=ENV, text=True, **kwargs)


def test_a_reader_that_stops_reading_ends_the_command_quietly_with_0(tmp_path) -> None:
    """`sketchstory models | head -0`: the pipe is closed before the command writes."""
    proc = sketchstory_process("models", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0 and err == "", err


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_library_list_into_a_closed_pipe_exits_0_without_a_message(tmp_path, monkeypatch, capsys) -> None:
    from PIL import Image

    from conftest import draw_figure

    with Library.writer(tmp_path / "lib") as library, library.index.db:
        for n in range(3):
            library.add(library.normalise(Image.open(draw_figure(tmp_path / f"{n}.png", 64, 0.3 + 0.2 * n))),
                        Meta("user", f"figure {n}"))
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["library", "list", "--library", str(tmp_path / "lib")]) == 0
    assert capsys.readouterr().err == ""


def test_sigterm_keeps_finished_panels_and_exits_143_with_one_line(tmp_path) -> None:
    # Sequential, so that panels finish one at a time: in auto mode the three panels of one chunk finish
    # together and the run may end before the signal arrives (then the default handler gives -15).
    path = write_story(tmp_path / "s", 6, steps=60, mode="sequential")
    out = tmp_path / "out"
    proc = sketchstory_process("generate", str(path), "-o", str(out), "-q", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out / "panels" / "panel_00.png").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before panel 0 was seen; nothing to interrupt"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["terminated (SIGTERM): finished panels are kept; rerun the same command "
                                        "with --resume"]
    assert (out / "panels" / "panel_00.png").is_file() and not list(out.rglob(".*.part*"))


def test_only_into_an_empty_folder_does_not_report_other_panels_as_kept(tiny, tmp_path, capsys, monkeypatch) -> None:
    from sketchstory.pipeline import runner

    monkeypatch.setattr(runner, "load", lambda *a, **k: tiny)
    path = write_story(tmp_path / "s", 3, steps=2)
    assert main(["generate", str(path), "-o", str(tmp_path / "out"), "-q", "--only", "0"]) == 0
    said = capsys.readouterr().out
    assert "1 panel(s) rendered, 0 kept" in said and "panel(s) 1,2 not rendered yet" in said
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [p["status"] for p in info["panels"]] == ["rendered", "missing", "missing"]
