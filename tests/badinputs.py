"""The bad-input corpus: every case builds its inputs at test time (no binary files are committed).

A case is a story folder (story file and sketches) and an output folder, plus for some of them
command-line flags, run options, or a fault of the machine (a full disk, a file that cannot be
read). It says what every surface must answer: the exit code of ``sketchstory generate``, a part
of the message, whether ``sketchstory check`` gives the same answer, and what the Python API
raises. ``tests/test_bad_inputs.py`` runs every case through the command line, the API and the
web UI's handlers.
"""

from __future__ import annotations

import builtins
import errno
import io
import itertools
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import draw_figure, write_story
from sketchstory.models import ModelLoadError
from sketchstory.outputs import OutputError
from sketchstory.story import StoryError

OK, INPUT, MODEL, OUTPUT = 0, 2, 3, 4
CLI, CHECK, API, UI = "cli", "check", "api", "ui"
MISSING = object()  # put(): remove the key


@dataclass(frozen=True)
class Inputs:
    story: Path
    out: Path
    flags: tuple[str, ...] = ()  # extra `generate` flags
    options: dict[str, Any] = field(default_factory=dict)  # the same as RunOptions fields, for the API and the page


Builder = Callable[[Path], Inputs]
Fault = Callable[[pytest.MonkeyPatch, Inputs], None]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # story, sketch, settings, model, output
    build: Builder
    code: int  # the exit code of `sketchstory generate`
    message: str  # part of the answer, on every surface unless `messages` says otherwise
    error: type[Exception] | None = StoryError  # what load_story + generate raise (None: they succeed)
    check: bool = True  # `sketchstory check` answers the same (False: it passes, as it loads no model, writes nothing)
    warns: bool = False  # a success whose message is a warning (the API returns it in RunReport.warnings)
    surfaces: frozenset[str] = frozenset({CLI, CHECK, API, UI})
    messages: dict[str, str] = field(default_factory=dict)  # per-surface wording where it differs
    setting: tuple[str, Any] | None = None  # the settings field at fault, also tried in the page's settings form
    fault: Fault | None = None

    def expect(self, surface: str) -> str:
        return self.messages.get(surface, self.message)


# --- builders ---------------------------------------------------------------------------------


def put(where: str, value: Any) -> Callable[[dict], None]:
    """An edit of the story document: set (or with MISSING remove) the value at a dotted path."""

    def edit(doc: dict) -> None:
        *parents, last = (int(k) if k.isdigit() else k for k in where.split("."))
        node = doc
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        if value is MISSING:
            del node[last]
        else:
            node[last] = value

    return edit


def story(*edits: Callable[[dict], None], panels: int = 2) -> Builder:
    """A valid two-panel story for the tiny model (both panels sketched), changed by ``edits``."""

    def build(tmp: Path) -> Inputs:
        path = write_story(tmp / "story", panels, steps=2)
        doc = json.loads(path.read_text())
        for edit in edits:
            edit(doc)
        path.write_text(json.dumps(doc))
        return Inputs(path, tmp / "out")

    return build


def story_bytes(change: Callable[[bytes], bytes]) -> Builder:
    """The valid story with its file's bytes changed."""

    def build(tmp: Path) -> Inputs:
        inputs = story()(tmp)
        inputs.story.write_bytes(change(inputs.story.read_bytes()))
        return inputs

    return build


def with_flags(*flags: str, **options: Any) -> Builder:
    def build(tmp: Path) -> Inputs:
        return Inputs(story()(tmp).story, tmp / "out", flags, options)

    return build


def story_path(make: Callable[[Path], Path]) -> Builder:
    """A story path that is not a story file: ``make(folder)`` returns it."""

    def build(tmp: Path) -> Inputs:
        return Inputs(make(story()(tmp).story.parent), tmp / "out")

    return build


def model_is_the_story_file(tmp: Path) -> Inputs:
    """A story whose model is a file that exists but is no model: the story file itself."""
    inputs = story()(tmp)
    doc = json.loads(inputs.story.read_text())
    doc["settings"]["model"] = str(inputs.story)
    inputs.story.write_text(json.dumps(doc))
    return inputs


def out_path(make: Callable[[Path], Path]) -> Builder:
    def build(tmp: Path) -> Inputs:
        inputs = story()(tmp)
        return Inputs(inputs.story, make(tmp))

    return build


def sketch(write: Callable[[Path], object], ref: str = "sketches/00.png") -> Builder:
    """The valid story with panel 0's sketch at ``ref``, which ``write(path)`` makes (or not)."""

    def build(tmp: Path) -> Inputs:
        inputs = story(put("panels.0.sketch", ref))(tmp)
        write(inputs.story.parent / ref)
        return inputs

    return build


def sketches(*writers: tuple[str, Callable[[Path], object]]) -> Builder:
    """A story with one panel per (file name, writer)."""

    def build(tmp: Path) -> Inputs:
        inputs = story(panels=len(writers))(tmp)
        doc = json.loads(inputs.story.read_text())
        for panel, (name, write) in zip(doc["panels"], writers, strict=True):
            write(inputs.story.parent / "sketches" / name)
            panel["sketch"] = f"sketches/{name}"
        inputs.story.write_text(json.dumps(doc))
        return inputs

    return build


# --- pictures -----------------------------------------------------------------------------------


def figure(path: Path) -> np.ndarray:
    """The stick figure of the test stories, 64 x 64, black on white (drawn through a PNG beside ``path``)."""
    png = draw_figure(path.with_name(f".{path.name}.figure.png"), 64, 0.5)
    array = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    png.unlink()
    return array


def png_header(width: int, height: int) -> Callable[[Path], object]:
    """A PNG whose header claims ``width`` x ``height`` pixels and that holds no picture data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def truncated_png(path: Path) -> None:
    Image.fromarray(figure(path)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def picture(array: Callable[[], np.ndarray]) -> Callable[[Path], object]:
    return lambda p: Image.fromarray(array()).save(p)


def picture_of_figure(path: Path) -> None:
    Image.fromarray(figure(path)).save(path)


def convert(mode: str, **save: Any) -> Callable[[Path], object]:
    """The stick figure saved in Pillow mode ``mode``."""
    return lambda p: Image.fromarray(figure(p)).convert(mode).save(p, **save)


def sixteen_bit(path: Path) -> None:
    cv2.imwrite(str(path), figure(path).astype(np.uint16) * 257)


def float_tiff(path: Path) -> None:
    Image.fromarray(figure(path).astype(np.float32) / 255.0, mode="F").save(path)


def animated(path: Path) -> None:
    frames = [Image.fromarray(figure(path)), Image.new("L", (64, 64), 255)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


def transparent_layer(path: Path) -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 3] = 255 - figure(path)
    Image.fromarray(rgba, mode="RGBA").save(path)


def palette_with_transparency(path: Path) -> None:
    image = Image.fromarray(figure(path)).convert("P")
    image.save(path, transparency=255)


def symlink_outside(path: Path) -> None:
    outside = path.parents[2] / "outside.png"
    Image.fromarray(figure(outside)).save(outside)
    path.symlink_to(outside)


# --- faults of the machine ----------------------------------------------------------------------


def deny(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """Make ``target`` (a file, or a folder and what is under it) unreadable and unwritable.

    Permissions do it for ordinary users; root passes every permission check, so for root the
    calls that open files or make folders refuse the target as the kernel would for anyone else.
    """
    target.chmod(0)
    if os.geteuid() != 0:
        return
    target = target.resolve()

    def refused(path: Any) -> bool:
        return isinstance(path, str | os.PathLike) and Path(os.path.abspath(path)).is_relative_to(target)

    def guard(call: Callable) -> Callable:
        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            if refused(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return call(path, *args, **kwargs)

        return guarded

    for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "mkdir")):
        monkeypatch.setattr(module, name, guard(getattr(module, name)))


def unreadable_story(monkeypatch: pytest.MonkeyPatch, inputs: Inputs) -> None:
    deny(monkeypatch, inputs.story)


def unreadable_sketch(monkeypatch: pytest.MonkeyPatch, inputs: Inputs) -> None:
    deny(monkeypatch, inputs.story.parent / "sketches" / "00.png")


def unwritable_output(monkeypatch: pytest.MonkeyPatch, inputs: Inputs) -> None:
    deny(monkeypatch, inputs.out.parent)


def disk_full_after(saves: int) -> Fault:
    """Every picture written after the first ``saves`` fills the disk: part of it is written, then ENOSPC."""

    def fault(monkeypatch: pytest.MonkeyPatch, inputs: Inputs) -> None:
        real, count = Image.Image.save, itertools.count()

        def save(image: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
            if next(count) < saves or not isinstance(fp, str | os.PathLike):
                return real(image, fp, *args, **kwargs)
            Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n")  # what fitted
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(Image.Image, "save", save)

    return fault


def story_folder_as_output(tmp: Path) -> Inputs:
    inputs = story()(tmp)
    return Inputs(inputs.story, inputs.story.parent)


def folder_of_other_files(*flags: str, **options: Any) -> Builder:
    """An output folder that holds a file sketchstory did not write (with ``flags``: e.g. --force)."""

    def build(tmp: Path) -> Inputs:
        inputs = story()(tmp)
        (tmp / "mine").mkdir()
        (tmp / "mine" / "notes.txt").write_text("the user's own notes")
        return Inputs(inputs.story, tmp / "mine", flags, options)

    return build


def locked_folder(tmp: Path) -> Path:
    (tmp / "locked").mkdir()
    return tmp / "locked" / "out"


def file_in_the_way(tmp: Path) -> Path:
    (tmp / "a-file").write_text("not a folder")
    return tmp / "a-file"


# --- the corpus ---------------------------------------------------------------------------------


def _settings(name: str, key: str, value: Any, message: str, *, form: bool = True) -> Case:
    return Case(name, "settings", story(put(f"settings.{key}", value)), INPUT, message,
                setting=(key, value) if form else None)


def _flag(name: str, flags: tuple[str, ...], message: str, code: int = INPUT, **options: Any) -> Case:
    """A bad command-line flag; with ``options``, the same through the API (and the page, for a device)."""
    surfaces = {CLI} | ({API} if options else set()) | ({UI} if "device" in options else set())
    error = None if not options else ValueError
    return Case(name, "settings", with_flags(*flags, **options), code, message, error=error, check=False,
                surfaces=frozenset(surfaces))


def _sketch(name: str, write: Callable[[Path], object], message: str, ref: str = "sketches/00.png", **kw: Any) -> Case:
    return Case(name, "sketch", sketch(write, ref), INPUT, message, **kw)


# Pictures without a line to use (answer: "has no lines"), and unusual files that are fine sketches.
NO_LINES: dict[str, Callable[[Path], object]] = {
    "blank white image": picture(lambda: np.full((64, 64), 255, np.uint8)),
    "black image": picture(lambda: np.zeros((64, 64), np.uint8)),
    "noise": picture(lambda: np.random.default_rng(0).normal(128, 20, (64, 64)).clip(0, 255).astype(np.uint8)),
    "one pixel": picture(lambda: np.zeros((1, 1), np.uint8)),
}
ODD_FORMATS: tuple[tuple[str, Callable[[Path], object]], ...] = (
    ("deep.png", sixteen_bit), ("print.jpg", convert("CMYK")), ("moving.gif", animated),
    ("palette.png", palette_with_transparency), ("grey-alpha.png", convert("LA")),
    ("layer.png", transparent_layer), ("float.tiff", float_tiff), ("bits.png", convert("1")),
)


def corpus() -> list[Case]:
    long_prompt = "a young wizard " + "in a very long flowing robe with stars and moons " * 12
    cases = [
        # the story file
        Case("empty file", "story", story_bytes(lambda b: b""), INPUT, "not valid JSON"),
        Case("truncated JSON", "story", story_bytes(lambda b: b[: len(b) // 2]), INPUT, "not valid JSON"),
        Case("not UTF-8", "story", story_bytes(lambda b: b"\xff\xfe" + b), INPUT, "not UTF-8 text"),
        Case("nested too deeply", "story", story_bytes(lambda b: b"[" * 100_000), INPUT, "nested too deeply"),
        Case("number of 5000 digits", "story",
             story_bytes(lambda b: b.replace(b'"seed": 10', b'"seed": ' + b"9" * 5000)), INPUT,
             "not a usable JSON document"),
        Case("a list, not an object", "story", story_bytes(lambda b: b"[" + b + b"]"), INPUT, "must be a JSON object"),
        Case("NaN guidance", "story",
             story_bytes(lambda b: b.replace(b'"guidance_scale": 5.0', b'"guidance_scale": NaN')), INPUT,
             "settings.guidance_scale: Input should be a finite number"),
        Case("unknown schema", "story", story(put("schema", "comicbook/v3")), INPUT, "is not a sketchstory story"),
        Case("unknown version", "story", story(put("version", 3)), INPUT, "story format version 3"),
        Case("character box outside the panel", "story",
             story(put("panels.1.characters", [{"name": "wizard", "box": [0.5, 0, 1.5, 1]}])), INPUT,
             "panels[1].characters[0].box: box [0.5, 0.0, 1.5, 1.0] is not inside the panel"),
        Case("character mask missing", "story",
             story(put("panels.1.characters", [{"name": "wizard", "mask": "masks/w.png"}])), INPUT,
             "panels[1].characters[0].mask: file not found: masks/w.png",
             # the page opens the story without the mask, and says so
             messages={UI: "cannot read the region mask masks/w.png of wizard; it stands on the sketch's subject"}),
        Case("unknown top-level field", "story", story(put("colour", "red")), INPUT, "colour: unknown field"),
        Case("unknown panel field", "story", story(put("panels.1.promt", "x")), INPUT,
             "panels[1].promt: unknown field"),
        Case("unknown settings field", "story", story(put("settings.sampler", "ddim")), INPUT,
             "settings.sampler: unknown field"),
        Case("no panels field", "story", story(put("panels", MISSING)), INPUT, "panels: Field required"),
        Case("zero panels", "story", story(put("panels", [])), INPUT, "a story needs at least one panel"),
        Case("panels not a list", "story", story(put("panels", "one, two")), INPUT, "panels: should be a list"),
        Case("panel not an object", "story", story(put("panels.1", "a dragon")), INPUT,
             "panels[1]: should be an object"),
        Case("empty prompt", "story", story(put("panels.0.prompt", "")), INPUT, "panels[0].prompt: String should have"),
        Case("blank prompt", "story", story(put("panels.0.prompt", "   ")), INPUT, "panels[0].prompt: prompt is blank"),
        Case("negative seed", "story", story(put("panels.1.seed", -1)), INPUT, "panels[1].seed"),
        Case("seed too large", "story", story(put("panels.1.seed", 2**64)), INPUT, "panels[1].seed"),
        Case("unknown character", "story", story(put("panels.0.characters", ["knight"])), INPUT,
             "unknown character 'knight'"),
        Case("duplicate character", "story", story(put("characters", [{"name": "a"}, {"name": "a"}])), INPUT,
             "name 'a' is used twice"),
        Case("caption of 300,000 characters", "story", story(put("panels.0.caption", "and then " * 33_334)), INPUT,
             "panels[0].caption: String should have at most 500 characters"),
        Case("title of 10,000 characters", "story", story(put("title", "t" * 10_000)), INPUT,
             "title: String should have at most 200 characters"),
        Case("story file over 16 MiB", "story", story_bytes(lambda b: b[:-2] + b" " * (17 * 2**20) + b[-2:]), INPUT,
             "larger than 16 MiB, the limit for a story file"),
        Case("story file missing", "story", story_path(lambda d: d / "nope.json"), INPUT, "file not found"),
        Case("story path is a folder", "story", story_path(lambda d: d), INPUT, "is a folder",
             messages={UI: "**Done**"}),  # the page opens the folder's story.json
        Case("story file unreadable", "story", story(), INPUT, "Permission denied", fault=unreadable_story),
        Case("prompt over 77 CLIP tokens", "story", story(put("panels.0.prompt", long_prompt)), OK,
             "panels[0].prompt: 1", error=None, warns=True),  # 1xx tokens: truncated with a warning
        Case("UTF-8 byte-order mark", "story", story_bytes(lambda b: b"\xef\xbb\xbf" + b), OK, "2 panel(s) rendered",
             error=None, messages={CHECK: "ok, 2 panel(s)", UI: "**Done**"}),
        # sketches
        _sketch("sketch missing", Path.unlink, "panels[0].sketch: file not found: sketches/00.png",
                messages={UI: "file not found"}),
        _sketch("sketch path leaves the folder", lambda p: None, "leaves the story's folder", ref="../x.png"),
        _sketch("absolute sketch path", lambda p: None, "leaves the story's folder", ref="/etc/hostname"),
        _sketch("NUL in the sketch path", lambda p: None, "contains a NUL character", ref="sketches/a\0b.png"),
        _sketch("symlink out of the folder", symlink_outside, "leaves the story's folder", ref="sketches/link.png"),
        _sketch("sketch is a folder", lambda p: p.mkdir(), "is a folder", ref="sketches/dir.png",
                messages={UI: "file not found"}),
        _sketch("empty image file", lambda p: p.write_bytes(b""), "the file is corrupt or not a picture"),
        _sketch("text named .png", lambda p: p.write_text("a sketch"), "the file is corrupt or not a picture"),
        _sketch("truncated PNG", truncated_png, "the file is corrupt or not a picture"),
        _sketch("header claims 8000x8000", png_header(8000, 8000),
                "8000x8000 pixels, more than the 40,000,000 allowed"),
        _sketch("header claims 20000x20000 (a decompression bomb)", png_header(20_000, 20_000),
                "too large to decode safely"),
        *(_sketch(name, write, "has no lines") for name, write in NO_LINES.items()),
        _sketch("sketch unreadable", picture_of_figure, "Permission denied", fault=unreadable_sketch),
        Case("unusual formats: 16-bit, CMYK, animated, palette, LA, alpha, float, 1-bit", "sketch",
             sketches(*ODD_FORMATS), OK,
             "8 panel(s) rendered", error=None, messages={CHECK: "ok, 8 panel(s)", UI: "**Done**"}),
        # settings
        _settings("width zero", "width", 0, "settings.width: Input should be greater than or equal to 8"),
        _settings("height negative", "height", -64, "settings.height: Input should be greater than or equal to 8"),
        _settings("width not a multiple of 8", "width", 30, "width 30 is not a multiple of 8"),
        _settings("width over 4096", "width", 8192, "settings.width: Input should be less than or equal to 4096"),
        _settings("zero steps", "steps", 0, "settings.steps: Input should be greater than or equal to 1"),
        _settings("start step beyond the steps", "maga.start_step", 5, "resolves to step 5, but there are only 2"),
        _settings("start step fraction over 1", "maga.start_step", "50/24", "a fraction 'a/b' with a <= b"),
        _settings("start step a float", "maga.start_step", 1.5, "give an int step", form=False),
        _settings("start layer over 16", "maga.start_layer", 17,
                  "start_layer: Input should be less than or equal to 16"),
        _settings("start layer negative", "maga.start_layer", -1, "start_layer: Input should be greater than"),
        _settings("negative guidance", "guidance_scale", -1, "guidance_scale: Input should be greater than"),
        _settings("unknown scheduler", "scheduler", "plms", "settings.scheduler: Input should be"),
        _settings("unknown mode", "mode", "parallel", "settings.mode: Input should be"),
        _settings("negative chunk size", "chunk_size", -1, "chunk_size: Input should be greater than"),
        _settings("bad memory policy", "maga.memory", "window:0", "memory policy 'window:0'"),
        _settings("canny thresholds crossed", "canny_low", 250, "canny_low 250 must be below canny_high 200"),
        _settings("zero tau", "maga.tau", 0, "maga.tau: Input should be greater than 0"),
        _settings("zero token budget", "maga.token_budget", 0, "token_budget: Input should be greater", form=False),
        _settings("negative memory budget", "maga.memory_budget_mb", -1, "memory_budget_mb", form=False),
        _flag("--size not WxH", ("--size", "512"), "give WIDTHxHEIGHT"),
        _flag("--size not a multiple of 8", ("--size", "30x32"), "width 30 is not a multiple of 8"),
        _flag("--steps 0", ("--steps", "0"), "settings.steps: Input should be greater than or equal to 1"),
        _flag("--maga-start-step beyond", ("--maga-start-step", "9"), "resolves to step 9"),
        _flag("--maga-start-layer 17", ("--maga-start-layer", "17"), "less than or equal to 16"),
        _flag("--guidance nan", ("--guidance", "nan"), "finite number"),
        _flag("--memory nonsense", ("--memory", "most"), "memory policy 'most'"),
        _flag("--only beyond the story", ("--only", "7"), "the story has panels 0..1", only=frozenset({7})),
        _flag("--device nonsense", ("--device", "gpu0"), "device 'gpu0': use cpu, cuda or cuda:N", device="gpu0"),
        # models
        Case("model folder missing", "model", story(put("settings.model", "./no-such-model")), MODEL,
             "does not exist", error=ModelLoadError, check=False),
        Case("model is not a model", "model", model_is_the_story_file, MODEL,
             "could not load the base model", error=ModelLoadError, check=False),
        Case("hub model offline", "model", story(put("settings.model", "nobody/nothing")), MODEL,
             "not in the local Hugging Face cache", error=ModelLoadError, check=False),
        Case("ControlNet missing", "model", story(put("settings.model", "demo"), put("settings.controlnet", "./no-cn"),
                                                  put("settings.width", 64), put("settings.height", 64)),
             MODEL, "ControlNet not found", error=ModelLoadError, check=False),
        # outputs
        Case("output is a file", "output", out_path(file_in_the_way), OUTPUT, "is not writable", error=OSError,
             check=False, surfaces=frozenset({CLI, CHECK, API})),
        Case("output under a file", "output", out_path(lambda t: file_in_the_way(t) / "out"), OUTPUT,
             "is not writable", error=OSError, check=False, surfaces=frozenset({CLI, CHECK, API})),
        Case("output folder unwritable", "output", out_path(locked_folder), OUTPUT, "is not writable", error=OSError,
             check=False, surfaces=frozenset({CLI, CHECK, API}), fault=unwritable_output),
        Case("output is the story's own folder", "output", story_folder_as_output, INPUT, "the story's own folder",
             error=OutputError, check=False, surfaces=frozenset({CLI, CHECK, API})),
        Case("output holds files sketchstory did not write", "output", folder_of_other_files(), INPUT,
             "holds files that sketchstory did not write; give a new or empty folder, or add --force",
             error=OutputError, check=False, surfaces=frozenset({CLI, CHECK, API})),
        Case("--force into a folder of other files", "output", folder_of_other_files("--force", force=True), OK,
             "2 panel(s) rendered", error=None, check=False, surfaces=frozenset({CLI, API})),
        Case("disk full after the first panel", "output", story(), OUTPUT, "disk full while writing", error=OSError,
             check=False, surfaces=frozenset({CLI, CHECK, API}), fault=disk_full_after(3),
             messages={API: "No space left on device"}),
    ]
    if not torch.cuda.is_available():
        cases.append(_flag("--device cuda without a GPU", ("--device", "cuda"), "no usable CUDA GPU", device="cuda"))
    return cases
