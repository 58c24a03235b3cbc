"""The story document: panels, characters and generation settings; load, validate, save. No torch.

A story is a versioned JSON file. Sketch paths are relative to the file's folder and may not leave
it (a story folder is self-contained and safe to share). Loading reports every problem at once,
each with its location, e.g. ``panels[2].sketch: file not found: sketches/03.png``.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sketchstory.atomic import atomic_write_text
from sketchstory.locks import locked_folder

SCHEMA = "sketchstory/story"
VERSION = 1
LIBRARY_PREFIX = "library:"

Seed = Annotated[int, Field(ge=0, lt=2**63)]
# Limits that keep every story cheap to read and draw: a story file of thousands of panels is well
# under a megabyte; a caption past a few lines cannot fit under its panel in the strip.
MAX_STORY_BYTES = 16 * 2**20
MAX_TEXT = 4000  # prompts, descriptions, style, negative prompt: far past CLIP's 77 tokens
MAX_CAPTION = 500
MAX_TITLE = 200
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class StoryError(ValueError):
    """A story file that cannot be used; ``problems`` lists each one with its location."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        head = f"{source}: " if source else ""
        super().__init__(head + "invalid story:\n" + "\n".join(f"  - {p}" for p in problems))


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Character(_Doc):
    name: str = Field(min_length=1, max_length=64)
    description: Text = ""
    # A picture of the character: a path inside the story folder, as the issue "Characters as
    # first-class" defines it. Checked like sketches and kept through edits; not yet read by stage 2.
    reference: str | None = None


class Panel(_Doc):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    sketch: str | None = Field(default=None, max_length=MAX_TEXT)
    caption: str | None = Field(default=None, max_length=MAX_CAPTION)
    characters: tuple[str, ...] | None = None
    seed: Seed | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is blank: describe what the panel shows")
        return v


def _parse_start_step(v: int | str) -> int | Fraction:
    if isinstance(v, int):
        if v < 0:
            raise ValueError("start_step must be >= 0")
        return v
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", v)
    if not m or int(m[2]) == 0 or int(m[1]) > int(m[2]):
        raise ValueError(f"start_step {v!r}: give an int step or a fraction 'a/b' with a <= b, e.g. '24/50'")
    return Fraction(int(m[1]), int(m[2]))


class MagaSettings(_Doc):
    """MAGA knobs; names follow the thesis (``start_layer`` i, ``start_step`` s)."""

    enabled: bool = True
    # Counted in SD1.5's 16 self-attention layers (execution order); mapped proportionally on
    # other UNets, see attention.layers.first_maga_layer.
    start_layer: int = Field(default=8, ge=0, le=16)
    # An int step index, or 'a/b': step a of b, scaled to the run's step count (thesis: 24/50).
    start_step: int | str = "24/50"
    memory: str = "anchors:0+window:2"
    strength: float = Field(default=0.0, ge=0.0, le=10.0)
    tau: float = Field(default=0.1, gt=0.0)
    # Logit offset on every memory token: > 0 shares more, < 0 less (e^gain times the memory's weight).
    gain: float = Field(default=0.0, ge=-10.0, le=10.0)
    token_budget: int | None = Field(default=None, ge=1)
    # Cap on the memory bank; the token budget is lowered to fit (see attention/budget.py).
    memory_budget_mb: float | None = Field(default=None, gt=0)
    subject_mask: bool = False

    @field_validator("start_step", mode="before")
    @classmethod
    def _check_start_step(cls, v: Any) -> int | str:
        if isinstance(v, str) and v.strip().isdecimal():  # "24" typed on a command line or in a form
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int | str):
            raise ValueError(f"start_step {v!r}: give an int step or a fraction 'a/b' with a <= b, e.g. '24/50'")
        _parse_start_step(v)
        return v

    @field_validator("memory")
    @classmethod
    def _check_memory(cls, v: str) -> str:
        from sketchstory.attention.policy import parse_policy  # torch-free

        parse_policy(v)
        return v

    def resolved_start_step(self, steps: int) -> int:
        s = _parse_start_step(self.start_step)
        return round(s * steps) if isinstance(s, Fraction) else s


class Settings(_Doc):
    model: str = "demo"
    controlnet: str | None = None  # None: the model spec's own Canny ControlNet
    seed: int = Field(default=0, ge=0, lt=2**63)  # base seed for panels without their own
    width: int = Field(default=512, ge=8, le=4096)
    height: int = Field(default=512, ge=8, le=4096)
    steps: int = Field(default=30, ge=1, le=1000)
    guidance_scale: float = Field(default=7.5, ge=0.0, le=50.0)
    controlnet_scale: float = Field(default=1.0, ge=0.0, le=5.0)
    scheduler: Literal["ddim", "dpmpp-2m", "euler", "unipc"] = "ddim"
    canny_low: int = Field(default=100, ge=0, le=255)
    canny_high: int = Field(default=200, ge=0, le=255)
    # auto: batched in chunks sized to the free memory (pipeline.chunking), sequential if 2 panels do not fit.
    mode: Literal["auto", "sequential", "batched"] = "auto"
    # Panels denoised together in batched mode (0 = all), the most in auto mode (0 = no limit of its own);
    # memory carries across chunks.
    chunk_size: int = Field(default=0, ge=0)
    maga: MagaSettings = MagaSettings()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        problems = []
        for name in ("width", "height"):
            if getattr(self, name) % 8:
                problems.append(f"{name} {getattr(self, name)} is not a multiple of 8 (the VAE needs it): use e.g. 512")
        if self.canny_low >= self.canny_high:
            problems.append(f"canny_low {self.canny_low} must be below canny_high {self.canny_high}")
        start = self.maga.resolved_start_step(self.steps)
        if self.maga.enabled and start >= self.steps:
            problems.append(
                f"maga.start_step resolves to step {start}, but there are only {self.steps} steps "
                f"(0..{self.steps - 1}): MAGA would never run; lower it or use a fraction like '24/50'"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Story(_Doc):
    schema_: Literal["sketchstory/story"] = Field(default=SCHEMA, alias="schema")
    version: Literal[1] = VERSION
    title: str = Field(default="Untitled story", max_length=MAX_TITLE)
    style: Text = ""
    negative_prompt: Text = ""
    characters: tuple[Character, ...] = ()
    panels: tuple[Panel, ...] = Field(min_length=1)
    settings: Settings = Settings()
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)

    @model_validator(mode="after")
    def _check_names(self) -> Story:
        names = [c.name for c in self.characters]
        problems = [f"characters: name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
        for i, p in enumerate(self.panels):
            for n in p.characters or ():
                if n not in names:
                    problems.append(f"panels[{i}].characters: unknown character {n!r} (known: {', '.join(names) or 'none'})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- derived views -------------------------------------------------------------------

    def panel_characters(self, index: int) -> tuple[Character, ...]:
        """Characters in panel ``index``: those listed, else those whose name the prompt mentions."""
        panel = self.panels[index]
        if panel.characters is not None:
            return tuple(c for c in self.characters if c.name in panel.characters)
        text = panel.prompt.lower()
        return tuple(c for c in self.characters if re.search(rf"\b{re.escape(c.name.lower())}\b", text))

    def full_prompt(self, index: int) -> str:
        """The text stage 2 is conditioned on: panel prompt, character descriptions, style."""
        parts = [self.panels[index].prompt.strip()]
        parts += [c.description.strip() for c in self.panel_characters(index) if c.description.strip()]
        if self.style.strip():
            parts.append(self.style.strip())
        return ", ".join(parts)

    def panel_seed(self, index: int) -> int:
        """The panel's own seed, else one derived from the base seed and its position."""
        seed = self.panels[index].seed
        return seed if seed is not None else (self.settings.seed * 1_000_003 + index) % 2**63

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False) + "\n"

    def with_panels(self, panels: list[Panel] | tuple[Panel, ...]) -> Story:
        return self.model_copy(update={"panels": tuple(panels)})

    def with_settings(self, changes: Mapping[str, Any], source: str | None = None) -> Story:
        """This story with some settings changed, validated again (``StoryError`` lists every problem).

        Keys name settings, ``maga.<name>`` for MAGA's, e.g. ``{"steps": 20, "maga.start_step": "12/50"}``;
        ``"maga"`` replaces the MAGA settings whole. Every caller (command line, web form, evaluation)
        changes settings this way, so a new setting needs no code beyond its field.
        """
        # Only what was set is carried over, so the settings a story never gave stay unsaid (and
        # keep following its model, see explicit_settings).
        data = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for key, value in changes.items():
            *parents, name = key.split(".")
            target, fields = data.setdefault("settings", {}), Settings.model_fields
            for part in parents:
                kind = fields[part].annotation if part in fields else None
                if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
                    raise StoryError([f"settings.{key}: there is no such setting"], source)
                target, fields = target.setdefault(part, {}), kind.model_fields
            target[name] = value
        return parse_story(data, source)

    def explicit_settings(self) -> set[str]:
        """The settings the story gives (from its file or edits), as :meth:`with_settings` keys; the
        others are defaults, which the pipeline fills from the model (``models.native_settings``)."""
        s = self.settings
        return {k for k in s.model_fields_set if k != "maga"} | {f"maga.{k}" for k in s.maga.model_fields_set}


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after", "function-before") and not str(part).startswith("function-"):
            out += ("." if out else "") + str(part)
    return out or "story"


# Pydantic's wording for JSON users: lists and objects rather than tuples, dictionaries and models.
_PLAIN = {
    "extra_forbidden": "unknown field (check the spelling; see the story format in README.md)",
    "tuple_type": "should be a list [...]",
    "list_type": "should be a list [...]",
    "model_type": "should be an object {...}",
    "dict_type": "should be an object {...}",
}


def _problems(err: ValidationError) -> list[str]:
    errors = err.errors()
    panel_errors = any(e["loc"][:1] == ("panels",) and len(e["loc"]) > 1 for e in errors)
    problems = []
    for e in errors:
        loc = _format_loc(tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p)))
        if e["type"] == "too_short" and loc == "panels":
            if panel_errors:  # the panels are there, but invalid: their own problems say why
                continue
            msg = 'a story needs at least one panel: add {"prompt": "..."} to the panels list'
        else:
            msg = _PLAIN.get(e["type"], e["msg"].removeprefix("Value error, "))
        problems.append(f"{loc}: {msg}")
    return problems


def parse_story(data: Any, source: str | None = None) -> Story:
    """Validate a decoded JSON document; raise ``StoryError`` listing every problem."""
    if not isinstance(data, dict):
        raise StoryError(["the document must be a JSON object with a 'panels' list"], source)
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise StoryError([f"schema: {schema!r} is not a sketchstory story (expected {SCHEMA!r})"], source)
    version = data.get("version", VERSION)
    if version != VERSION:
        raise StoryError(
            [f"version: this file is story format version {version!r}; this sketchstory reads version {VERSION}"
             " (upgrade sketchstory, or convert the file)"],
            source,
        )
    try:
        return Story.model_validate(data)
    except ValidationError as err:
        raise StoryError(_problems(err), source) from None


def resolve_sketch(story_dir: Path, ref: str) -> Path:
    """Resolve a panel's sketch path; refuse paths that escape the story's folder."""
    if "\0" in ref:
        raise ValueError(f"path {ref!r} contains a NUL character: give a plain relative path like sketches/01.png")
    root = story_dir.resolve()
    path = (root / ref).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"path {ref!r} leaves the story's folder: copy the sketch next to the story file")
    return path


def check_sketches(story: Story, story_dir: Path) -> list[str]:
    """Problems with the sketch files a story refers to (library references are checked by the library)."""
    return [problem for i, panel in enumerate(story.panels)
            if panel.sketch is not None and not panel.sketch.startswith(LIBRARY_PREFIX)
            for problem in _check_file(f"panels[{i}].sketch", story_dir, panel.sketch)]


def check_references(story: Story, story_dir: Path) -> list[str]:
    """Problems with the characters' reference pictures."""
    return [problem for i, character in enumerate(story.characters) if character.reference is not None
            for problem in _check_file(f"characters[{i}].reference", story_dir, character.reference)]


def _check_file(field: str, story_dir: Path, ref: str) -> list[str]:
    """What is wrong with the picture file ``ref`` names inside the story folder (nothing: [])."""
    try:
        path = resolve_sketch(story_dir, ref)
    except ValueError as e:
        return [f"{field}: {e}"]
    if path.is_dir():
        return [f"{field}: {ref} is a folder: name the image file in it"]
    if not path.is_file():
        return [f"{field}: file not found: {ref}"]
    return []


def load_story(path: Path, *, check_files: bool = True) -> Story:
    """Load and validate a story file (and, by default, that its sketch and reference files exist)."""
    path = Path(path)
    try:
        with path.open("rb") as file:  # read no more than the limit: the path may be /dev/zero or a pipe
            data = file.read(MAX_STORY_BYTES + 1)
        if len(data) > MAX_STORY_BYTES:
            raise StoryError([f"{path} is larger than {MAX_STORY_BYTES // 2**20} MiB, the limit for a story file: "
                              "is it a story? (a story of 5,000 panels takes about 1 MiB)"])
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is allowed
    except FileNotFoundError:
        raise StoryError([f"file not found: {path}"]) from None
    except IsADirectoryError:
        raise StoryError([f"{path} is a folder: give the story file (e.g. {path / 'story.json'})"]) from None
    except UnicodeDecodeError as e:
        raise StoryError([f"{path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8 JSON"]) from None
    except OSError as e:
        raise StoryError([f"cannot read {path}: {e.strerror or e}"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise StoryError([f"line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})"], str(path)) from None
    except RecursionError:
        raise StoryError(["the JSON is nested too deeply to be a story"], str(path)) from None
    except ValueError as e:  # e.g. a number with thousands of digits
        raise StoryError([f"not a usable JSON document: {e}"], str(path)) from None
    story = parse_story(data, str(path))
    if check_files and (problems := check_sketches(story, path.parent) + check_references(story, path.parent)):
        raise StoryError(problems, str(path))
    return story


def save_story(story: Story, path: Path) -> Path:
    """Write the story atomically as JSON; the settings it does not give stay unsaid in the file, so
    that they keep following its model (see ``pipeline.model_settings``)."""
    data = story.model_dump(mode="json", by_alias=True)
    given = story.settings.model_dump(mode="json", exclude_unset=True)
    data["settings"] = given
    if not given:
        del data["settings"]
    return atomic_write_text(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")


STORY_LOCK_WAIT_S = 10.0  # an edit holds the lock for a read and a write: milliseconds


@contextmanager
def story_lock(path: Path) -> Iterator[None]:
    """Hold the lock of the story file's folder (edits are short: a second editor waits for the first)."""
    path = Path(path)
    if not path.resolve().parent.is_dir():
        raise StoryError([f"file not found: {path}"])
    with locked_folder(path.resolve().parent, f"the story {path}",
                       "another command is editing it; try again when it has finished", STORY_LOCK_WAIT_S):
        yield


def edit_story(path: Path, change: Callable[[Story], Story]) -> Story:
    """Read the story file, ``change`` it and save it, all under :func:`story_lock`: an edit another
    command made meanwhile is read, never overwritten with an older copy. Returns the saved story."""
    with story_lock(path):
        story = change(load_story(path, check_files=False))
        save_story(story, path)
    return story
