"""Stories on disk, for the commands that run many: story files from files, story folders and folders
of story folders, and the name each one's outputs go under."""

from __future__ import annotations

from pathlib import Path


def story_files(paths: list[Path]) -> list[Path]:
    """Story files from files, story folders (with story.json) and folders of story folders."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir() and not (path / "story.json").exists():
            found = sorted(p / "story.json" for p in path.iterdir() if (p / "story.json").exists())
            if not found:
                raise ValueError(f"{path}: no story.json in it or in its subfolders")
            files += found
        else:
            files.append(path / "story.json" if path.is_dir() else path)
    return files


def story_name(file: Path) -> str:
    """A story's name among others: its folder's, for a story.json, else its file's."""
    return file.parent.name if file.name == "story.json" else file.stem
