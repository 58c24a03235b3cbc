"""The stories of a batch: a folder of story folders, or a JSONL file with one story per line.

Each story becomes a :class:`StoryTask` with an output name that is unique in the batch and stable
from run to run, so that a rerun finds its finished outputs: a story folder's name, or in a JSONL
file ``line-NNNN`` (its line number) unless the line names it. A JSONL line is a story document,
or ``{"name": ..., "folder": ..., "story": {...}}`` where ``folder`` (relative to the JSONL file's
folder, which is the default) holds the story's sketches; it must lie inside the JSONL file's folder
(as a story's sketches must lie inside the story's folder) unless ``allow_outside`` says otherwise. A story that cannot be read is a task
with a ``problem``: it is reported with the others instead of stopping the batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sketchstory.pipeline.story_files import story_files, story_name
from sketchstory.story import MAX_STORY_BYTES, Story, StoryError, check_sketches, load_story, parse_story

REPORT_NAME = "batch.json"  # the batch report beside the stories' folders: no story may take its name
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ENVELOPE_KEYS = {"name", "folder", "story"}
MAX_JSONL_BYTES = 16 * MAX_STORY_BYTES  # 256 MiB: thousands of ordinary stories; read before parsing, so bounded


@dataclass(frozen=True)
class StoryTask:
    name: str  # its outputs go to OUT/<name>/
    source: str  # where it was read, for messages: a story file, or JSONL_FILE:LINE
    folder: Path  # the story's sketch paths are relative to this folder
    story: Story | None  # None when it cannot be used
    problem: str | None = None  # why it cannot be used


def read_tasks(path: Path, *, allow_outside: bool = False) -> list[StoryTask]:
    """The stories in ``path``: a folder of story folders (or one story folder), or a ``.jsonl`` file
    (whose lines may name sketch folders outside its own folder only with ``allow_outside``)."""
    path = Path(path)
    if path.is_dir():
        tasks = _from_folder(path)
    elif path.is_file() and path.suffix == ".jsonl":
        tasks = _from_jsonl(path, allow_outside)
    else:
        raise StoryError([f"{path} is neither a folder of story folders nor a .jsonl file of stories"])
    return _unique(tasks)


def with_story(tasks: list[StoryTask], change: Callable[[Story], Story]) -> list[StoryTask]:
    """Every usable story changed by ``change`` (e.g. command-line settings); one it breaks gets a problem."""
    out = []
    for task in tasks:
        if task.story is not None:
            try:
                task = replace(task, story=change(task.story))
            except StoryError as error:
                task = replace(task, story=None, problem=str(error))
        out.append(task)
    return out


def _from_folder(folder: Path) -> list[StoryTask]:
    tasks = []
    for file in story_files([folder]):
        try:
            story, problem = load_story(file), None
        except StoryError as error:
            story, problem = None, str(error)
        tasks.append(StoryTask(story_name(file), str(file), file.parent.resolve(), story, problem))
    return tasks


def _from_jsonl(path: Path, allow_outside: bool) -> list[StoryTask]:
    try:
        with path.open("rb") as file:  # no more than the limit: the whole file is held in memory
            data = file.read(MAX_JSONL_BYTES + 1)
        if len(data) > MAX_JSONL_BYTES:
            raise StoryError([f"{path} is larger than {MAX_JSONL_BYTES // 2**20} MiB, the limit for a JSONL file "
                              "of stories: split it into several files, one batch each"])
        lines = data.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise StoryError([f"cannot read {path}: {error}"]) from None
    tasks = [_from_line(path, number, line, allow_outside) for number, line in enumerate(lines, 1) if line.strip()]
    if not tasks:
        raise StoryError([f"{path} has no stories: write one story (a JSON object) per line"])
    return tasks


def _from_line(path: Path, number: int, line: str, allow_outside: bool) -> StoryTask:
    source, name, folder = f"{path}:{number}", f"line-{number:04d}", path.parent.resolve()
    try:
        doc: Any = json.loads(line)
    except json.JSONDecodeError as error:
        return StoryTask(name, source, folder, None,
                         f"{source}: line {number}, column {error.colno}: not valid JSON ({error.msg}); "
                         "each line must be one whole story document")
    try:
        if isinstance(doc, dict) and "story" in doc and "panels" not in doc:
            name, folder, doc = _envelope(doc, name, folder, source, allow_outside)
        story = parse_story(doc, source)
        if problems := check_sketches(story, folder):
            raise StoryError(problems, source)
    except StoryError as error:
        return StoryTask(name, source, folder, None, str(error))
    return StoryTask(name, source, folder, story)


def _envelope(doc: dict[str, Any], name: str, folder: Path, source: str,
              allow_outside: bool) -> tuple[str, Path, Any]:
    """``{"name", "folder", "story"}``: the line's own output name and sketch folder."""
    problems = [f"{key}: unknown field (a line holds a story, or name/folder/story)" for key in
                sorted(set(doc) - ENVELOPE_KEYS)]
    name = doc.get("name", name)
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == REPORT_NAME:
        problems.append(f"name: {name!r} cannot name an output folder: use letters, digits, '.', '_' and '-'")
    if "folder" in doc:
        if not isinstance(doc["folder"], str):
            problems.append("folder: give a folder path, relative to the JSONL file's folder")
        else:
            root, folder = folder, (folder / doc["folder"]).resolve()
            if not (allow_outside or folder.is_relative_to(root)):
                problems.append(f"folder: {doc['folder']} is outside the JSONL file's folder {root}: put the "
                                "story's sketches under it, or pass --allow-folders-outside")
            elif not folder.is_dir():
                problems.append(f"folder: {doc['folder']} is not a folder (paths are relative to the JSONL file's)")
    if problems:
        raise StoryError(problems, source)
    return name, folder, doc["story"]


def _unique(tasks: list[StoryTask]) -> list[StoryTask]:
    """Tasks whose output name an earlier task has get a problem: two stories must not share a folder."""
    first: dict[str, str] = {}
    out = []
    for task in tasks:
        if task.name in first:
            task = replace(task, story=None, problem=f"{task.source}: the output name {task.name!r} is taken by "
                                                     f"{first[task.name]}; give each story its own name")
        else:
            first[task.name] = task.source
        out.append(task)
    return out
