"""An imported story: the story document, the pictures it refers to, and what the import dropped."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sketchstory.story import Story, save_story


@dataclass(frozen=True)
class ImportedStory:
    name: str  # the benchmark's name for it: the folder name it is written under
    story: Story
    pictures: dict[str, Path] = field(default_factory=dict)  # path in the story folder -> source file
    notes: tuple[str, ...] = ()  # what the import could not carry over, for the user to read


def write_story_folder(imported: ImportedStory, folder: Path) -> Path:
    """Write ``folder/story.json`` and the pictures; the folder appears complete or not at all."""
    folder = Path(folder)
    if folder.exists():
        raise ValueError(f"{folder} already exists: choose another -o, or remove it first")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        for rel, source in imported.pictures.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / rel)
        save_story(imported.story, tmp / "story.json")
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder / "story.json"
