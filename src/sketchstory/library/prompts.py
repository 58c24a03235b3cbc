"""The prompts file of a library build: stories of scenes, and sundry objects by category.

Format (JSON, documented with an example in docs/library.md)::

    {"schema": "sketchstory/library-prompts", "version": 1,
     "candidates": 80, "sundry_candidates": 1, "seed": 0,
     "stories": [{"name": "The lost dragon egg", "tags": ["dragon"],
                  "scenes": [{"name": "discovery", "prompt": "a girl finds an egg in a cave"}]}],
     "sundry": {"animals": ["a cat sitting", {"prompt": "an owl on a branch", "tags": ["bird"]}]}}

A build turns it into jobs, one per sketch to make. A job's key is a hash of what decides its
picture (prompt, model, seed), so a resumed build skips exactly the finished ones, and editing a
prompt or switching models makes new sketches instead of silently keeping the old ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from sketchstory.library.index import LibraryError, Meta
from sketchstory.provenance import fingerprint

SCHEMA = "sketchstory/library-prompts"
VERSION = 1

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# The index keeps a sketch's tags as one comma-separated text.
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"^[^,]+$")]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scene(_Doc):
    prompt: Text
    name: Text | None = None
    tags: tuple[Tag, ...] = ()


class StoryPrompts(_Doc):
    name: Text
    tags: tuple[Tag, ...] = ()
    scenes: tuple[Scene, ...] = Field(min_length=1)


class SundryObject(_Doc):
    prompt: Text
    tags: tuple[Tag, ...] = ()


class PromptsFile(_Doc):
    schema_: str = Field(SCHEMA, alias="schema")
    version: int = VERSION
    candidates: int = Field(4, ge=1, le=1000)
    sundry_candidates: int = Field(1, ge=1, le=1000)
    seed: int = Field(0, ge=0)
    stories: tuple[StoryPrompts, ...] = ()
    sundry: dict[Text, tuple[SundryObject | Text, ...]] = {}


@dataclass(frozen=True)
class Job:
    key: str
    meta: Meta


def load_prompts(path: Path) -> PromptsFile:
    """Read and validate a prompts file, reporting every problem with its location."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryError(f"no prompts file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LibraryError(f"{path} is not a readable JSON prompts file: {error}") from error
    try:
        prompts = PromptsFile.model_validate(data)
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in error.errors()]
        raise LibraryError(f"{path}: invalid prompts file:\n" + "\n".join(f"  - {p}" for p in problems)) from None
    if prompts.schema_ != SCHEMA or prompts.version != VERSION:
        raise LibraryError(f"{path}: expected schema {SCHEMA!r} version {VERSION}, got {prompts.schema_!r} "
                           f"version {prompts.version}")
    names = [s.name for s in prompts.stories]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LibraryError(f"{path}: story names must be unique; repeated: {', '.join(twice)}")
    return prompts


def jobs(prompts: PromptsFile, model: str, candidates: int | None = None,
         sundry_candidates: int | None = None) -> list[Job]:
    """Every sketch the build makes, stories first, in file order; ``candidates`` override the file's."""
    k_story = candidates or prompts.candidates
    k_sundry = sundry_candidates or prompts.sundry_candidates
    out = []
    for story in prompts.stories:
        for i, scene in enumerate(story.scenes):
            for k in range(k_story):
                meta = Meta("story", scene.prompt, _tags(story.tags, scene.tags), story=story.name,
                            scene=scene.name or f"scene {i + 1}", scene_index=i, candidate=k, source=model)
                out.append(_job(meta, prompts.seed, f"story/{story.name}/{i}"))
    for category, objects in prompts.sundry.items():
        for item in objects:
            obj = item if isinstance(item, SundryObject) else SundryObject(prompt=item)
            for k in range(k_sundry):
                meta = Meta("sundry", obj.prompt, _tags(obj.tags), category=category, candidate=k, source=model)
                out.append(_job(meta, prompts.seed, f"sundry/{category}"))
    return out


def _tags(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for g in groups for t in g))


def _job(meta: Meta, base_seed: int, place: str) -> Job:
    # The seed depends on where the sketch sits and its candidate number, not on the model, so a
    # rebuild with another model draws the same noise for the same slot.
    seed = int(fingerprint([base_seed, place, meta.prompt, meta.candidate]), 16) % 2**31
    key = fingerprint([place, meta.prompt, meta.candidate, seed, meta.source])
    return Job(key, replace(meta, seed=seed))
