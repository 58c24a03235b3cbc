"""ConsiStory+ prompt sets (from 1Prompt1Story's repository, MIT) as sketchstory stories.

The file is YAML keyed by category; each entry has ``concept_token``, ``style``, ``subject`` and
``settings`` (one frame each). Several concepts are lists of the same length. Each entry becomes a
story named ``<category>_<index>``, as 1Prompt1Story names its outputs. The frame prompt is the
benchmark's own, ``"<style> <subject> <setting>"``; the concept becomes a character of that name
(no description, so nothing is added to the benchmark's prompt). docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sketchstory.benchmarks.folder import ImportedStory
from sketchstory.story import StoryError, parse_story


def read_consistory(source: Path) -> list[ImportedStory]:
    import yaml  # only this format needs it

    source = Path(source)
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise StoryError([f"cannot read it as YAML: {e}"], str(source)) from None
    if not isinstance(doc, dict):
        raise StoryError(["not a ConsiStory+ file: expected categories, each a list of prompt sets"], str(source))
    stories, problems = [], []
    for category, entries in doc.items():
        if not isinstance(entries, list):
            problems.append(f"{category}: expected a list of prompt sets")
            continue
        for index, entry in enumerate(entries):
            try:
                stories.append(_story(f"{category}_{index}", entry, f"{category}[{index}]"))
            except StoryError as e:
                problems += e.problems
    if problems:
        raise StoryError(problems, str(source))
    return stories


def _listed(value: Any) -> list[str] | None:
    items = value if isinstance(value, list) else [value]
    return [str(x).strip() for x in items] if all(isinstance(x, str) and x.strip() for x in items) else None


def _story(name: str, entry: Any, where: str) -> ImportedStory:
    if not isinstance(entry, dict):
        raise StoryError([f"{where}: expected an object with concept_token, style, subject, settings"])
    tokens, subjects = _listed(entry.get("concept_token")), _listed(entry.get("subject"))
    settings, style = entry.get("settings"), entry.get("style", "")
    problems = []
    if tokens is None or subjects is None or len(tokens) != len(subjects):
        problems.append(f"{where}: concept_token and subject must be texts, or lists of texts of the same length")
    if not isinstance(settings, list) or not settings or not all(isinstance(s, str) and s.strip() for s in settings):
        problems.append(f"{where}.settings: expected a list of frame prompts")
    if not isinstance(style, str):
        problems.append(f"{where}.style: expected a text")
    if problems:
        raise StoryError(problems)
    subject = " and ".join(subjects or [])
    characters = list(dict.fromkeys(tokens or []))
    story = parse_story({
        "title": f"ConsiStory+ {name}: {subject}",
        "characters": [{"name": c} for c in characters],
        "panels": [{"prompt": " ".join(p for p in (style.strip(), subject, s.strip()) if p), "characters": characters}
                   for s in settings],
    }, where)
    return ImportedStory(name, story)
