"""The story's characters and where they stand in its panels, edited (``sketchstory story character ...``).

Like :mod:`sketchstory.panels`, every function takes a story and returns a new, validated one; a
picture from outside the story's folder (a reference, a region mask) is copied in first, so the
folder stays self-contained. Placing a character in a panel that lists no one first lists those its
prompt names, so they stay in it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sketchstory.atomic import atomic_write_bytes
from sketchstory.panels import check_index, free_path
from sketchstory.sketches import load_image
from sketchstory.story import Story, StoryError, parse_story

REFERENCE_DIR, MASK_DIR = "refs", "masks"


def set_character(story: Story, story_dir: Path, name: str, *, description: str | None = None,
                  reference: Path | None = None, drop_reference: bool = False) -> Story:
    """Add the character ``name``, or change its description or reference picture."""
    characters = [c.model_dump() for c in story.characters]
    character = next((c for c in characters if c["name"] == name), None)
    if character is None:
        character = {"name": name}
        characters.append(character)
    if description is not None:
        character["description"] = description
    if reference is not None:
        character["reference"] = _picture_in(story_dir, reference, REFERENCE_DIR, name)
    elif drop_reference:
        character["reference"] = None
    return _with(story, characters=characters)


def remove_character(story: Story, name: str) -> Story:
    """Remove a character from the story and from every panel that lists it."""
    _known(story, name)
    panels = [p.model_dump(mode="json") for p in story.panels]
    for panel in panels:
        if panel["characters"] is not None:
            panel["characters"] = [c for c in panel["characters"] if (c if isinstance(c, str) else c["name"]) != name]
    return _with(story, characters=[c.model_dump() for c in story.characters if c.name != name], panels=panels)


def place(story: Story, story_dir: Path, index: int, name: str, *, box: tuple[float, float, float, float] | None = None,
          mask: Path | None = None) -> Story:
    """Put a character in panel ``index``: in ``box`` (fractions of the panel), in a region ``mask``
    picture (white on black), or, with neither, on the sketch's subject."""
    check_index(story, index)
    _known(story, name)
    region: dict[str, Any] = {}
    if box is not None:
        region["box"] = list(box)
    if mask is not None:
        region["mask"] = _picture_in(story_dir, mask, MASK_DIR, f"{name}_panel{index:02d}")
    placements = [c.model_dump(mode="json", exclude_none=True) for c in story.placements(index) if c.name != name]
    return _with_cast(story, index, [*placements, {"name": name, **region}])


def unplace(story: Story, index: int, name: str) -> Story:
    """Take a character out of panel ``index`` (the panel then lists who else is in it)."""
    check_index(story, index)
    present = story.placements(index)
    if name not in {c.name for c in present}:
        raise StoryError([f"panels[{index}].characters: {name!r} is not in this panel "
                          f"(it has: {', '.join(c.name for c in present) or 'no one'})"])
    return _with_cast(story, index, [c.model_dump(mode="json", exclude_none=True) for c in present if c.name != name])


def set_members(story: Story, index: int, names: list[str]) -> Story:
    """Who is in panel ``index``: ``names`` (in the story's character order); those who stay keep their
    box or mask, newcomers stand on the sketch's subject until placed."""
    check_index(story, index)
    for name in names:
        _known(story, name)
    kept = {c.name: c.model_dump(mode="json", exclude_none=True) for c in story.placements(index)}
    order = [c.name for c in story.characters if c.name in names]
    return _with_cast(story, index, [kept.get(name, {"name": name}) for name in order])


def set_setting(story: Story, index: int, setting: str | None) -> Story:
    """Name where panel ``index`` takes place (None: no setting); backgrounds share memory within one."""
    check_index(story, index)
    panels = [p.model_dump(mode="json") for p in story.panels]
    panels[index]["setting"] = setting
    return _with(story, panels=panels)


def _known(story: Story, name: str) -> None:
    if name not in {c.name for c in story.characters}:
        raise StoryError([f"character {name!r}: no such character (known: "
                          f"{', '.join(c.name for c in story.characters) or 'none'}); add it with "
                          "`sketchstory story character STORY NAME --description ...`"])


def _with_cast(story: Story, index: int, placements: list[dict[str, Any]]) -> Story:
    panels = [p.model_dump(mode="json") for p in story.panels]
    panels[index]["characters"] = [p if p.keys() - {"name"} else p["name"] for p in placements]
    return _with(story, panels=panels)


def _with(story: Story, **changes: Any) -> Story:
    """The story with some parts replaced, checked as a file is (``StoryError`` with locations)."""
    return parse_story(story.model_dump(mode="json", by_alias=True) | changes)


def _picture_in(story_dir: Path, picture: Path, folder: str, stem: str) -> str:
    """``picture``'s path inside the story folder; a readable image from elsewhere is copied in first."""
    path, root = Path(picture).resolve(), Path(story_dir).resolve()
    load_image(path)  # refuse missing or corrupt files before the story refers to them
    if not path.is_relative_to(root):
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "picture"
        path = atomic_write_bytes(free_path(root / folder, safe, path.suffix.lower() or ".png"), path.read_bytes())
    return path.relative_to(root).as_posix()


def unplaced_together(story: Story) -> list[str]:
    """Panels of a character-routed story where several characters have neither box nor mask: they all
    take the sketch's subject region, so routing cannot keep their memories apart (a warning, not an error:
    the story renders, as one shared memory would)."""
    if story.version < 2:
        return []
    warnings = []
    for n in range(len(story.panels)):
        loose = [p.name for p in story.placements(n) if not p.placed]
        if len(loose) > 1:
            warnings.append(f"panels[{n}]: {', '.join(loose)} have no box or mask, so they share the sketch's subject "
                            f"and MAGA cannot keep them apart; place each, e.g. "
                            f"sketchstory story place STORY {n} {loose[0]} --box 0.05,0.2,0.5,0.95")
    return warnings
