"""The story document: panels, characters and generation settings; load, validate, save. No torch.

A story is a versioned JSON file. Sketch paths are relative to the file's folder and may not leave
it (a story folder is self-contained and safe to share). Loading reports every problem at once,
each with its location, e.g. ``panels[2].sketch: file not found: sketches/03.png``.

Version 2 places characters in panels (a box or a region mask) and names a panel's setting; a story
that does neither is written as version 1, so an older sketchstory still reads it.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    computed_field,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from sketchstory.atomic import atomic_write_text
from sketchstory.locks import locked_folder

SCHEMA = "sketchstory/story"
VERSION = 2  # the newest version read and written; 1 is read too, and written when it suffices
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


Name = Annotated[str, Field(min_length=1, max_length=64)]
BOX_HELP = "give [x0, y0, x1, y1] as fractions of the panel's width and height, e.g. [0.05, 0.2, 0.5, 0.95]"


class Character(_Doc):
    name: Name
    description: Text = ""
    # A picture of the character: a path inside the story folder. Routed stories read it as the
    # character's anchor memory (pipeline/references.py).
    reference: str | None = Field(default=None, max_length=MAX_TEXT)


class Placement(_Doc):
    """Where a character is in a panel: a box (0..1 of the panel), a region mask picture, or neither
    (then the sketch's subject, see docs/maga.md). Written as the bare name when it has neither."""

    name: Name
    box: tuple[float, float, float, float] | None = None
    mask: str | None = Field(default=None, max_length=MAX_TEXT)

    @field_validator("box", mode="before")
    @classmethod
    def _four_numbers(cls, box: Any) -> Any:
        if isinstance(box, list | tuple) and len(box) != 4:
            raise ValueError(f"box {list(box)} has {len(box)} numbers, not 4: {BOX_HELP}")
        return box

    @field_validator("box")
    @classmethod
    def _check_box(cls, box: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if box is None:
            return None
        x0, y0, x1, y1 = box
        if not all(0.0 <= v <= 1.0 for v in box):
            hint = " (pixels? divide by the panel's width and height)" if any(v > 1 for v in box) else ""
            raise ValueError(f"box {list(box)} is not inside the panel (0..1){hint}: {BOX_HELP}")
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"box {list(box)} is empty: x0 must be below x1 and y0 below y1; {BOX_HELP}")
        return box

    @model_validator(mode="after")
    def _one_region(self) -> Placement:
        if self.box is not None and self.mask is not None:
            raise ValueError("give a box or a mask, not both")
        return self

    @property
    def placed(self) -> bool:
        return self.box is not None or self.mask is not None


class Panel(_Doc):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    sketch: str | None = Field(default=None, max_length=MAX_TEXT)
    caption: str | None = Field(default=None, max_length=MAX_CAPTION)
    # Who is in the panel: names, or placements {"name", "box" | "mask"}; None: those the prompt names.
    characters: tuple[Placement, ...] | None = None
    # Where the panel is: backgrounds share MAGA memory only between panels of one setting (docs/maga.md).
    setting: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE)
    seed: Seed | None = None

    @field_validator("characters", mode="before")
    @classmethod
    def _names_are_placements(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return [{"name": c} if isinstance(c, str) else c for c in v]
        return v

    @field_serializer("characters")
    def _placements_as_names(self, v: tuple[Placement, ...] | None) -> list[Any] | None:
        if v is None:
            return None
        return [c.model_dump(exclude_none=True) if c.placed else c.name for c in v]

    @model_serializer(mode="wrap")
    def _without_setting(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("setting") is None:  # a version-1 reader knows no setting
            data.pop("setting", None)
        return data

    @property
    def names(self) -> tuple[str, ...] | None:
        """The names of the characters listed, None when the panel lists none."""
        return None if self.characters is None else tuple(c.name for c in self.characters)

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
    # Share of the unconditional guidance branch that reads no memory: 0 = both read it (the thesis), 1 = only
    # the conditional one, so classifier-free guidance amplifies the memory as it does the prompt.
    memory_guidance: float = Field(default=0.0, ge=0.0, le=1.0)
    token_budget: int | None = Field(default=None, ge=1)
    # Cap on the memory bank; the token budget is lowered to fit (see attention/budget.py).
    memory_budget_mb: float | None = Field(default=None, gt=0)
    subject_mask: bool = False
    # Character-routed stories (version 2): backgrounds read those of the same setting, or nothing.
    background: Literal["setting", "none"] = "setting"

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

    @model_serializer(mode="wrap")
    def _later_knobs_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Knobs added after version 1 are left out at their defaults: version 1 knows no such settings, and
        # the runs' fingerprints (and so --resume) stay what they were.
        data = handler(self)
        for key, default in (("background", "setting"), ("memory_guidance", 0.0)):
            if data.get(key) == default:
                data.pop(key)
        return data

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

    def value(self, key: str) -> Any:
        """A setting by its :meth:`Story.with_settings` key (``maga.<name>`` for MAGA's); read from the
        model, not a dump, which leaves some defaults out."""
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value

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
    title: str = Field(default="Untitled story", max_length=MAX_TITLE)
    style: Text = ""
    negative_prompt: Text = ""
    characters: tuple[Character, ...] = ()
    panels: tuple[Panel, ...] = Field(min_length=1)
    settings: Settings = Settings()
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_version(cls, data: Any) -> Any:
        # The version a document declares is checked by parse_story; the story's own is what it needs.
        if isinstance(data, dict) and "version" in data:
            data = {k: v for k, v in data.items() if k != "version"}
        return data

    @model_validator(mode="after")
    def _check_names(self) -> Story:
        names = [c.name for c in self.characters]
        problems = [f"characters: name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
        for i, p in enumerate(self.panels):
            listed = p.names or ()
            for j, n in enumerate(listed):
                if n not in names:
                    problems.append(f"panels[{i}].characters[{j}]: unknown character {n!r} "
                                    f"(known: {', '.join(names) or 'none'}); add it to the story's characters first")
                elif n in listed[:j]:
                    problems.append(f"panels[{i}].characters[{j}]: {n!r} is listed twice; list each character once")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version(self) -> int:
        """The oldest story format that holds this story: 2 once a panel places a character or names a setting
        (or backgrounds are kept apart)."""
        placed = any(p.setting is not None or any(c.placed for c in p.characters or ()) for p in self.panels)
        return 2 if placed or self.settings.maga.background != "setting" else 1

    # --- derived views -------------------------------------------------------------------

    def panel_characters(self, index: int) -> tuple[Character, ...]:
        """Characters in panel ``index``: those listed, else those whose name the prompt mentions."""
        panel = self.panels[index]
        if panel.names is not None:
            return tuple(c for c in self.characters if c.name in panel.names)
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

    def placements(self, index: int) -> tuple[Placement, ...]:
        """Where each character of panel ``index`` is (in the story's character order); unplaced when not said."""
        listed = {c.name: c for c in self.panels[index].characters or ()}
        return tuple(listed.get(c.name, Placement(name=c.name)) for c in self.panel_characters(index))

    def to_json(self) -> str:
        data = self.model_dump(mode="json", by_alias=True)
        head = {"schema": data.pop("schema"), "version": data.pop("version")}  # first, as people read files
        return json.dumps(head | data, indent=2, ensure_ascii=False) + "\n"

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
        if loc == "story" and e["type"] == "value_error":  # the story's own checks: each located already
            problems += msg.split("\n")
            continue
        problems.append(f"{loc}: {msg}")
    return problems


def parse_story(data: Any, source: str | None = None) -> Story:
    """Validate a decoded JSON document; raise ``StoryError`` listing every problem."""
    if not isinstance(data, dict):
        raise StoryError(["the document must be a JSON object with a 'panels' list"], source)
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise StoryError([f"schema: {schema!r} is not a sketchstory story (expected {SCHEMA!r})"], source)
    version = data.get("version", 1)
    if isinstance(version, bool) or version not in range(1, VERSION + 1):
        raise StoryError(
            [f"version: this file is story format version {version!r}; this sketchstory reads versions 1 to {VERSION}"
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


def check_masks(story: Story, story_dir: Path) -> list[str]:
    """Problems with the region masks that place characters in panels."""
    return [problem for i, panel in enumerate(story.panels) for j, placement in enumerate(panel.characters or ())
            if placement.mask is not None
            for problem in _check_file(f"panels[{i}].characters[{j}].mask", story_dir, placement.mask)]


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
    """Load and validate a story file (and, by default, that its sketch, reference and mask files exist)."""
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
    if check_files and (problems := check_sketches(story, path.parent) + check_references(story, path.parent)
                        + check_masks(story, path.parent)):
        raise StoryError(problems, str(path))
    return story


def save_story(story: Story, path: Path) -> Path:
    """Write the story atomically as JSON; the settings it does not give stay unsaid in the file, so
    that they keep following its model (see ``pipeline.model_settings``)."""
    data = json.loads(story.to_json())
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
