"""The page's working story and the pure edits the page makes to it.

The working story is always a valid :class:`Story`, so the autosaved file loads in the CLI too:
an edit that would make it invalid (a blank prompt, a duplicate character) raises ``StoryError``
and the page keeps the last valid story, showing why. Panel insert/delete/reorder are
:mod:`sketchstory.panels`'s, so they pin seeds exactly as the CLI does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sketchstory import panels as panel_ops
from sketchstory.story import LIBRARY_PREFIX, Character, Panel, Story, StoryError, parse_story

NEW_STORY_PROMPT = "a young wizard in a blue robe stands in a forest"
# Seeds the page makes stay below 2**53: a browser holds numbers as doubles, and a larger seed shown
# in a number field comes back rounded, so the panel would no longer reproduce.
PAGE_SEED_LIMIT = 2**53


def new_story() -> Story:
    """What the page starts with when the work folder has no story yet: one panel, for the demo model."""
    return parse_story({"title": "Untitled story", "panels": [{"prompt": NEW_STORY_PROMPT}],
                        "settings": {"width": 64, "height": 64, "steps": 20, "guidance_scale": 4.0}})


def panel_choices(story: Story) -> list[tuple[str, int]]:
    return [(f"Panel {i + 1}", i) for i in range(len(story.panels))]


def panel_caption(story: Story, index: int) -> str:
    """A short line naming the panel, for galleries."""
    prompt = story.panels[index].prompt.strip()
    return f"{index + 1}. {prompt[:60]}{'…' if len(prompt) > 60 else ''}"


def clamp_index(story: Story, index: float | None) -> int:
    """A valid panel index near ``index`` (components send floats, or None before a choice is made)."""
    return min(max(int(index or 0), 0), len(story.panels) - 1)


def characters_text(story: Story) -> str:
    return "\n".join(f"{c.name}: {c.description}" if c.description else c.name for c in story.characters)


def parse_characters(text: str) -> tuple[Character, ...]:
    """``name: description`` lines; blank lines are skipped."""
    out, problems = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, _, description = line.partition(":")
        name = name.strip()
        if not name or len(name) > 64:
            problems.append(f"characters, line {n}: start the line with a name of 1 to 64 characters, "
                            "then a colon and the description, e.g. 'wizard: a young wizard in a blue robe'")
            continue
        out.append(Character(name=name, description=description.strip()))
    if problems:
        raise StoryError(problems)
    return tuple(out)


def _revalidated(story: Story, **update: Any) -> Story:
    """The story with ``update`` applied, validated as a whole (cross-field rules included)."""
    data = story.model_dump(mode="json", by_alias=True)
    data.update(update)
    return parse_story(data)


def set_meta(story: Story, title: str, style: str, negative_prompt: str, characters: str) -> Story:
    """Title, style, negative prompt and characters; a character keeps its reference picture by name."""
    references = {c.name: c.reference for c in story.characters}
    chars = [c.model_dump() | {"reference": references.get(c.name)} for c in parse_characters(characters)]
    return _revalidated(story, title=title.strip() or "Untitled story", style=style, negative_prompt=negative_prompt,
                        characters=chars)


def parse_seed(text: str | int | None, where: str) -> int | None:
    """A seed typed as text (exact at any size, unlike a browser number field); empty is None."""
    if text is None or isinstance(text, int):
        return text
    text = str(text).strip()
    if not text:
        return None
    if not text.isdigit():
        raise StoryError([f"{where}: {text!r} is not a seed; type a whole number from 0, or leave it empty"])
    return int(text)


def seed_text(seed: int | None) -> str:
    return "" if seed is None else str(seed)


def set_panel_text(story: Story, index: int, prompt: str, caption: str, seed: str | int | None) -> Story:
    """Prompt, caption and seed of one panel (an empty seed derives it from the story seed and position)."""
    if not prompt.strip():
        raise StoryError([f"panel {index + 1}: the prompt is empty; describe what the panel shows "
                          "(the previous prompt is kept until then)"])
    panels = [p.model_dump(mode="json") for p in story.panels]
    seed = parse_seed(seed, f"panel {index + 1} seed")
    panels[index].update(prompt=prompt, caption=caption.strip() or None, seed=seed)
    return _revalidated(story, panels=panels)


def set_sketch_ref(story: Story, index: int, ref: str | None) -> Story:
    panels = list(story.panels)
    panels[index] = panels[index].model_copy(update={"sketch": ref})
    return story.with_panels(panels)


def add_panel(story: Story, after: int, prompt: str) -> tuple[Story, int]:
    """Insert a panel after panel ``after``; returns the story and the new panel's index."""
    if not prompt.strip():
        raise StoryError(["new panel: write its prompt first (what the panel shows), then press Add"])
    story = panel_ops.insert_panel(story, after + 1, Panel(prompt=prompt.strip()))
    return story, after + 1


def delete_panel(story: Story, index: int) -> tuple[Story, int]:
    story = panel_ops.delete_panel(story, index)
    return story, min(index, len(story.panels) - 1)


def move_panel(story: Story, index: int, delta: int) -> tuple[Story, int]:
    """Move a panel ``delta`` places (its sketch and seed go with it); at either end it stays."""
    target = min(max(index + delta, 0), len(story.panels) - 1)
    if target == index:
        return story, index
    return panel_ops.move_panel(story, index, target), target


def reseed(story: Story, index: int) -> Story:
    """Give a panel a new seed (for "regenerate"): hashed from the old one, so no neighbour's seed repeats."""
    old = story.panel_seed(index)
    seed = int.from_bytes(hashlib.sha256(f"sketchstory/ui/reseed/{old}".encode()).digest()[:8], "big") % PAGE_SEED_LIMIT
    panels = list(story.panels)
    panels[index] = panels[index].model_copy(update={"seed": seed})
    return story.with_panels(panels)


def library_ref(story: Story, index: int) -> str | None:
    """The panel's ``library:ID`` reference, if its sketch comes from the sketch library."""
    ref = story.panels[index].sketch
    return ref if ref is not None and ref.startswith(LIBRARY_PREFIX) else None
