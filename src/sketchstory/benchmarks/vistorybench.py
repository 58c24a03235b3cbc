"""ViStoryBench stories (github.com/ViStoryBench/vistorybench, MIT) as sketchstory stories.

A story is a folder ``NN/`` with ``story.json`` and reference pictures ``image/<character key>/*``;
the dataset is a folder of such folders. The field mapping, and what is dropped, is in
docs/benchmarks.md; the prompt follows the benchmark's own order of importance for a 77-token
text encoder: what the shot shows, where, then the camera.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sketchstory.benchmarks.folder import ImportedStory
from sketchstory.story import StoryError, parse_story

PICTURES = (".png", ".jpg", ".jpeg")
PROMPT_FIELDS = ("Static Shot Description", "Setting Description", "Shot Perspective Design")
CAPTION_FIELD = "Plot Correspondence"
LANGUAGES = ("en", "ch")


def read_vistorybench(source: Path, lang: str = "en") -> list[ImportedStory]:
    """Every story under ``source``: a ``story.json``, a story folder, or the dataset's folder of them."""
    source = Path(source)
    if lang not in LANGUAGES:
        raise ValueError(f"--lang {lang!r}: ViStoryBench has 'en' and 'ch'")
    if source.is_file():
        return [_story(source, lang)]
    if (source / "story.json").is_file():
        return [_story(source / "story.json", lang)]
    files = sorted(source.glob("*/story.json"), key=lambda p: (not p.parent.name.isdigit(), p.parent.name.zfill(8)))
    if not files:
        raise StoryError([f"{source}: no story.json here or in its subfolders (a ViStoryBench story is a "
                          "folder NN/ with story.json and image/)"])
    return [_story(f, lang) for f in files]


def _text(value: Any, lang: str, where: str, problems: list[str]) -> str:
    if isinstance(value, dict) and isinstance(value.get(lang), str):
        return value[lang].strip()
    problems.append(f"{where}: expected {{\"{lang}\": text, ...}}")
    return ""


def _story(path: Path, lang: str) -> ImportedStory:
    source = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoryError([f"cannot read it as JSON: {e}"], source) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Shots"), list) or not isinstance(doc.get("Characters"), dict):
        raise StoryError(["not a ViStoryBench story: expected an object with 'Shots' (a list) and 'Characters'"],
                         source)
    problems: list[str] = []
    notes: list[str] = []
    folder = path.parent
    characters, pictures, names = [], {}, {}
    for key, data in doc["Characters"].items():
        if not isinstance(data, dict):
            problems.append(f"Characters.{key}: expected an object")
            continue
        name = str(data.get(f"name_{lang}") or key).strip()
        names[key] = name
        refs = sorted(p for p in (folder / "image" / key).glob("*") if p.suffix.lower() in PICTURES)
        slug = re.sub(r"[^\w.-]+", "_", key).strip("_") or "character"
        for ref in refs:
            pictures[f"refs/{slug}/{ref.name}"] = ref
        if not refs:
            notes.append(f"character {name!r}: no reference picture in image/{key}/")
        characters.append({"name": name, "description": str(data.get(f"prompt_{lang}") or "").strip(),
                           "reference": f"refs/{slug}/{refs[0].name}" if refs else None})
    panels = []
    shots = sorted((s for s in doc["Shots"] if isinstance(s, dict)), key=lambda s: s.get("index", 0))
    for i, shot in enumerate(shots):
        where = f"Shots[{i}] (index {shot.get('index', '?')})"
        parts = [_text(shot.get(f), lang, f"{where}.{f}", problems) for f in PROMPT_FIELDS]
        prompt = "; ".join(p for p in parts if p)
        if not prompt:
            problems.append(f"{where}: no shot, setting or perspective description to make a prompt of")
        appearing = shot.get("Characters Appearing")
        keys = appearing.get("en") if isinstance(appearing, dict) else None
        if not isinstance(keys, list):
            problems.append(f"{where}.Characters Appearing: expected {{\"en\": [names], ...}}")
            keys = []
        keys = [str(k) for k in keys]
        unknown = [k for k in keys if k not in names]
        if unknown:
            notes.append(f"{where}: characters not in 'Characters', left out: {', '.join(map(str, unknown))}")
        panels.append({"prompt": prompt or "-", "caption": _text(shot.get(CAPTION_FIELD), lang, f"{where}.{CAPTION_FIELD}",
                                                               problems) or None,
                       "characters": list(dict.fromkeys(names[k] for k in keys if k in names))})
    if problems:
        raise StoryError(problems, source)
    story_type = doc.get("Story_type", {})
    kind = story_type.get(lang) if isinstance(story_type, dict) else None
    title = f"ViStoryBench {folder.name}" + (f" ({kind})" if isinstance(kind, str) and kind.strip() else "")
    story = parse_story({"title": title, "characters": characters, "panels": panels}, source)
    return ImportedStory(folder.name, story, pictures, tuple(notes))
