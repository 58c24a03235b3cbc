"""The page's work folder: the autosaved working story, its sketches, the latest render, downloads.

::

    WORK/story.json   the working story, saved after every edit (an ordinary story file)
    WORK/sketches/    drawn, uploaded and imported sketches, named by content (never overwritten)
    WORK/out/         the latest render (layout: sketchstory.pipeline.runner)
    WORK/exports/     zips made for download
    WORK/shown/       copies of results handed to the browser, never rewritten (see ``Workspace.shown``)
    WORK/previous/N/  a story (and its render) that opening another one replaced
    WORK/trash.json   deleted panels, newest last, for "Undo delete"

Sketches are named by a hash of their bytes, so importing a story twice or drawing the same thing
again reuses the file, and a panel's sketch moves with it when panels are reordered.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from sketchstory.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from sketchstory.library.resolve import resolve as resolve_library
from sketchstory.pipeline.model_settings import follow_model
from sketchstory.pipeline.runner import strip_pages
from sketchstory.story import LIBRARY_PREFIX, Panel, Placement, Story, StoryError, load_story, resolve_sketch, save_story, story_lock

SKETCH_DIR = "sketches"
# An uploaded zip larger than this when unpacked is refused (a story folder is a few MB).
MAX_UNZIPPED_BYTES = 512 * 2**20
MAX_ZIP_MEMBERS = 10_000
MAX_TRASH = 50  # deleted panels kept for "Undo delete"


@dataclass(frozen=True)
class RunResults:
    """The latest render in ``WORK/out``: the story as it was run and the files it left."""

    story: Story
    panels: list[Path | None]  # per panel of ``story``; None where its file is missing
    strip: Path | None
    info: dict | None  # run.json; None after a stopped render (the strip and run.json are then removed)

    @property
    def complete(self) -> bool:
        return self.info is not None

    def summary(self) -> str:
        """One line on what the run that wrote ``run.json`` did."""
        if self.info is None:
            return "The last render was stopped; generate again to finish it."
        states = [p.get("status") for p in self.info.get("panels", [])]
        return (f"The last render: {states.count('rendered')} of {len(states)} panels rendered "
                f"({states.count('reused')} kept) with the `{self.info.get('model')}` model in "
                f"{self.info.get('total_seconds')} s.")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "story"


class Workspace:
    def __init__(self, root: Path, library: Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.library = library  # the sketch library (None: the default one, see library.resolve)

    @property
    def story_path(self) -> Path:
        return self.root / "story.json"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    # --- the working story ------------------------------------------------------------------

    def load(self) -> Story | None:
        """The autosaved story, or None if there is none yet; ``StoryError`` if it is broken."""
        if not self.story_path.exists():
            return None
        return load_story(self.story_path, check_files=False)  # missing sketches are reported at render time

    def save(self, story: Story) -> None:
        with story_lock(self.story_path):  # waits for a command line edit of the same file to finish
            save_story(story, self.story_path)

    def keep_previous(self) -> Path | None:
        """Move the working story and its render to ``previous/N/`` (before another story replaces them).

        Returns the folder, or None when there was no story; nothing is overwritten, so every
        replaced story stays recoverable (open ``previous/N/story.json``).
        """
        if not self.story_path.exists():
            return None
        n = 1
        while (kept := self.root / "previous" / str(n)).exists():
            n += 1
        kept.mkdir(parents=True)
        story = self.load()
        if story is not None:
            self.export_story(story, kept)
        if self.out.exists():
            self.out.rename(kept / "out")
        return kept

    def set_aside(self) -> Path:
        """Rename an unreadable working story out of the way (never overwritten); returns its new path."""
        n = 1
        while (kept := self.root / f"story.unreadable-{n}.json").exists():
            n += 1
        return self.story_path.rename(kept)

    # --- deleted panels -----------------------------------------------------------------------

    @property
    def trash_path(self) -> Path:
        return self.root / "trash.json"

    def _trash(self) -> list[dict]:
        try:
            items = json.loads(self.trash_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return items if isinstance(items, list) else []

    def trash_panel(self, index: int, panel: Panel) -> None:
        items = self._trash() + [{"index": index, "panel": panel.model_dump(mode="json")}]
        atomic_write_text(self.trash_path, json.dumps(items[-MAX_TRASH:], indent=2) + "\n")

    def untrash_panel(self) -> tuple[int, Panel] | None:
        """The panel deleted last and where it was, taken out of the trash; None when it is empty."""
        items = self._trash()
        if not items:
            return None
        last = items.pop()
        atomic_write_text(self.trash_path, json.dumps(items, indent=2) + "\n")
        return int(last["index"]), Panel.model_validate(last["panel"])

    def trash_count(self) -> int:
        return len(self._trash())

    # --- what the browser is sent -------------------------------------------------------------

    def shown(self, path: Path) -> Path:
        """A copy of ``path`` for the browser to fetch, named by its content and never rewritten.

        The render rewrites ``out/`` while the page may be fetching from it; a file replaced
        mid-download is sent with the old length and the new bytes (h11's "Too much data for
        declared Content-Length"). Copies under ``shown/HASH/NAME`` are complete before Gradio
        sees their name, and keep the file name for downloads.
        """
        data = path.read_bytes()
        target = self.root / "shown" / hashlib.sha256(data).hexdigest()[:16] / path.name
        if not target.exists():
            atomic_write_bytes(target, data)
        return target

    # --- sketches ---------------------------------------------------------------------------

    def store_bytes(self, data: bytes, suffix: str) -> str:
        """Keep a sketch file's bytes in the work folder; returns its reference (relative path)."""
        ref = f"{SKETCH_DIR}/{hashlib.sha256(data).hexdigest()[:16]}{suffix.lower() or '.png'}"
        if not (self.root / ref).exists():
            atomic_write_bytes(self.root / ref, data)
        return ref

    def store_image(self, image: Image.Image) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return self.store_bytes(buffer.getvalue(), ".png")

    def sketch_file(self, story: Story, index: int) -> Path | None:
        """The panel's sketch file in the work folder, if it has a local one that exists."""
        ref = story.panels[index].sketch
        return None if ref is None or ref.startswith(LIBRARY_PREFIX) else self._inside(ref)

    def local_files(self, story: Story) -> dict[str, Path]:
        """Reference -> file, for every file of the story in the work folder: panel sketches, characters'
        reference pictures and region masks (what a story folder needs beside its story.json)."""
        refs = ([p.sketch for p in story.panels if not (p.sketch or LIBRARY_PREFIX).startswith(LIBRARY_PREFIX)]
                + [c.reference for c in story.characters] + [c.mask for p in story.panels for c in p.characters or ()])
        return {ref: path for ref in refs if ref is not None and (path := self._inside(ref)) is not None}

    def _inside(self, ref: str) -> Path | None:
        """The file ``ref`` names in the work folder; None when it is missing or points outside."""
        try:
            path = resolve_sketch(self.root, ref)
        except ValueError:
            return None
        return path if path.is_file() else None

    # --- opening and saving story files -----------------------------------------------------

    def import_story(self, path: Path) -> tuple[Story, list[str]]:
        """Load a story file and copy its sketches (library sketches too, when the library has them) and its
        characters' reference pictures in.

        Returns the story and notes on the sketches that could not be found: a missing file leaves
        its panel without a sketch, a missing library sketch keeps its ``library:ID`` reference.
        """
        path = Path(path).expanduser()
        story = load_story(path, check_files=False)
        notes, panels = [], list(story.panels)
        for i, panel in enumerate(panels):
            if panel.sketch is None:
                continue
            try:
                source = self._sketch_source(path.parent, panel.sketch)
                data = source.read_bytes()
            except (ValueError, OSError) as e:  # LibraryError is a ValueError
                problem = f"cannot read {panel.sketch}: {e.strerror}" if isinstance(e, OSError) else str(e)
                if panel.sketch.startswith(LIBRARY_PREFIX):
                    notes.append(f"panel {i + 1}: {problem}")
                    continue
                notes.append(f"panel {i + 1}: {problem}; the panel has no sketch now, draw or upload one")
                panels[i] = panel.model_copy(update={"sketch": None})
                continue
            panels[i] = panel.model_copy(update={"sketch": self.store_bytes(data, source.suffix)})
        for i, panel in enumerate(panels):  # region masks that place characters (story format 2)
            if any(c.mask for c in panel.characters or ()):
                panels[i] = panel.model_copy(update={"characters": tuple(
                    self._import_mask(path.parent, i, c, notes) for c in panel.characters or ())})
        characters = list(story.characters)
        for i, character in enumerate(characters):
            if character.reference is None:
                continue
            try:
                source = self._sketch_source(path.parent, character.reference)
                reference: str | None = self.store_bytes(source.read_bytes(), source.suffix)
            except (ValueError, OSError):
                notes.append(f"character {character.name}: cannot read its reference picture "
                             f"{character.reference}; it has none now")
                reference = None
            characters[i] = character.model_copy(update={"reference": reference})
        story = follow_model(story)
        return story.with_panels(panels).model_copy(update={"characters": tuple(characters)}), notes

    def _import_mask(self, story_dir: Path, index: int, placement: Placement, notes: list[str]) -> Placement:
        """The placement with its mask copied in; one that cannot be read is dropped (the character then
        stands on the sketch's subject)."""
        if placement.mask is None:
            return placement
        try:
            source = self._sketch_source(story_dir, placement.mask)
            return placement.model_copy(update={"mask": self.store_bytes(source.read_bytes(), source.suffix)})
        except (ValueError, OSError):
            notes.append(f"panel {index + 1}: cannot read the region mask {placement.mask} of {placement.name}; "
                         "it stands on the sketch's subject now")
            return placement.model_copy(update={"mask": None})

    def _sketch_source(self, story_dir: Path, ref: str) -> Path:
        if ref.startswith(LIBRARY_PREFIX):
            return resolve_library(ref, self.library)
        source = resolve_sketch(story_dir, ref)
        if not source.is_file():
            raise ValueError(f"file not found: {ref}")
        return source

    def import_upload(self, upload: Path) -> tuple[Story, list[str]]:
        """A story uploaded in the page: a story ``.json``, or a ``.zip`` of a story folder (as downloaded)."""
        upload = Path(upload)
        if upload.suffix.lower() == ".json":
            return self.import_story(upload)
        if upload.suffix.lower() != ".zip":
            raise StoryError([f"{upload.name}: upload a story file (.json) or a zip of a story folder (.zip)"])
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".unzip-") as tmp:
            return self.import_story(_unzip_story(upload, Path(tmp)))

    def export_story(self, story: Story, dest: Path) -> Path:
        """Write the story and its files (sketches, reference pictures, masks) to ``dest`` (a ``.json`` file, or a folder for ``story.json``)."""
        dest = Path(dest).expanduser()
        target = dest if dest.suffix.lower() == ".json" else dest / "story.json"
        if Path(os.path.abspath(target)).parent.resolve() == Path("/"):
            raise StoryError([f"{target}: not in the filesystem root; save into a folder of its own"])
        if target.exists() and not _is_story(target):
            raise StoryError([f"{target} exists and is not a sketchstory story: it is not replaced; "
                              "give a new file or folder name"])
        for ref, source in self.local_files(story).items():
            if not (target.parent / ref).exists():
                atomic_write_bytes(target.parent / ref, source.read_bytes())
        return save_story(story, target)

    # --- results ----------------------------------------------------------------------------

    def results(self) -> RunResults | None:
        """The latest render, or None if nothing was rendered here yet."""
        try:
            story = load_story(self.out / "story.json", check_files=False)
        except StoryError:
            return None
        panels = [self.out / "panels" / f"panel_{n:02d}.png" for n in range(len(story.panels))]
        try:
            info = json.loads((self.out / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = None
        strip = self.out / "strip.png"
        return RunResults(story, [p if p.is_file() else None for p in panels], strip if strip.is_file() else None,
                          info)

    def stopped(self) -> None:
        """A render was stopped: the strip and run.json describe an older run now, so they go."""
        for path in [*strip_pages(self.out), self.out / "run.json"]:
            path.unlink(missing_ok=True)

    def results_zip(self) -> Path:
        """One zip of the latest render: panels, strip, conditions, run info, and the story with its sketches.

        Everything sits in one folder named after the story, so unpacked it is a story folder
        that ``sketchstory generate`` (and this page's upload) reads as is.
        """
        results = self.results()
        if results is None:
            raise StoryError(["nothing to download yet: generate the story first"])
        folder = slug(results.story.title)
        files: dict[str, Path] = {}
        for path in [self.out / "story.json", self.out / "run.json", *strip_pages(self.out)]:
            if path.is_file():
                files[path.name] = path
        for n, path in enumerate(results.panels):
            if path is not None:
                files[f"panels/{path.name}"] = path
            for condition in sorted((self.out / "conditions").glob(f"panel_{n:02d}_*.png")):
                files[f"conditions/{condition.name}"] = condition
        files |= self.local_files(results.story)
        target = self.exports / f"{folder}.zip"

        def write(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for arcname, path in sorted(files.items()):
                    zf.write(path, f"{folder}/{arcname}")

        return atomic_write(target, write)


def _is_story(path: Path) -> bool:
    try:
        load_story(path, check_files=False)
    except StoryError:
        return False
    return True


def _unzip_story(upload: Path, dest: Path) -> Path:
    """Unpack an uploaded zip safely and return its story file (the shallowest ``story.json``)."""
    try:
        with zipfile.ZipFile(upload) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                raise StoryError([f"{upload.name}: too large for a story folder; zip just the story and its sketches"])
            for m in members:
                parts = PurePosixPath(m.filename).parts
                if m.filename.startswith("/") or ".." in parts:
                    raise StoryError([f"{upload.name}: entry {m.filename!r} points outside the zip; "
                                      "zip the story folder itself"])
            zf.extractall(dest)
    except zipfile.BadZipFile:
        raise StoryError([f"{upload.name}: not a readable zip file"]) from None
    stories = sorted(dest.rglob("story.json"), key=lambda p: len(p.parts))
    if not stories:
        raise StoryError([f"{upload.name}: the zip has no story.json; zip a story folder (story.json and sketches/)"])
    return stories[0]
