"""What the page does on each event: thin adapters from components' values to the working story.

Every handler returns a dict of the components it changes. Edits keep the working story valid
(see :mod:`sketchstory.ui.state`) and autosave it; input problems become a note beside the field
or a ``gr.Warning``, failed renders a ``gr.Error`` — never a traceback in the page, and none in
the console for what a user can cause (``print_exception=False``); only unexpected failures are logged.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from sketchstory import panels as panel_ops
from sketchstory.library.index import LibraryError
from sketchstory.models import ModelLoadError, default_sketch_model
from sketchstory.pipeline.runner import RunReport
from sketchstory.sketches import SketchError, normalize_sketch
from sketchstory.story import Story, StoryError
from sketchstory.ui import state
from sketchstory.ui.cast_handlers import CastHandlers
from sketchstory.ui.canvas import (
    MAX_UPLOAD_MB,
    canny_preview,
    canvas_size,
    editor_value,
    enlarged,
    is_blank,
    merge_drawing,
    picture_from_data_url,
    placeholder,
    reduced,
    same_sketch,
    shown_sketch,
)
from sketchstory.ui.render import Cancelled, PanelProgress, Renderer, Saved
from sketchstory.ui.settings_form import apply_settings, switched_model, values_of
from sketchstory.ui.sources import search_library, sketch_candidates
from sketchstory.ui.widgets import Widgets
from sketchstory.ui.workspace import Workspace

log = logging.getLogger(__name__)

Update = dict[Any, Any]
THUMB = (96, 96)
# Live progress is sent at most this often (a tiny model takes milliseconds a step).
PROGRESS_INTERVAL_S = 0.25
NOTHING_RENDERED = "Nothing rendered yet."


NOT_APPLIED = "**Not applied:** "


def problems(err: StoryError) -> str:
    return NOT_APPLIED + "; ".join(err.problems)


def shown_on_canvas(value: dict) -> dict:
    """The editor showing ``value``, marked ``has-sketch`` when it holds one: the page's CSS then hides
    Gradio's "Upload an image or select the draw tool" prompt, which it would write over the sketch."""
    return gr.update(value=value, elem_classes=["has-sketch"] if value["layers"] else [])


def user_error(message: str) -> gr.Error:
    """An error the user can fix: shown in the page, no traceback in the console."""
    return gr.Error(message, print_exception=False)


class Handlers:
    def __init__(self, workspace: Workspace, renderer: Renderer, widgets: Widgets) -> None:
        self.ws, self.renderer, self.w = workspace, renderer, widgets
        self.cast = CastHandlers(workspace, widgets)

    def unchanged(self) -> Update:
        """No change (every event that can return this has the story among its outputs)."""
        return {self.w.story: gr.skip()}

    # --- views --------------------------------------------------------------------------------

    def meta_view(self, story: Story) -> Update:
        w = self.w
        return {w.title: story.title, w.style: story.style, w.characters: state.characters_text(story),
                w.negative: story.negative_prompt, w.meta_note: ""}

    def storyboard(self, story: Story) -> list[tuple[Any, str]]:
        items = []
        for n in range(len(story.panels)):
            path = self.ws.sketch_file(story, n)
            thumb = str(path) if path else placeholder(THUMB, "library" if state.library_ref(story, n) else "no sketch")
            items.append((thumb, state.panel_caption(story, n)))
        return items

    def panel_view(self, story: Story, index: float | None) -> Update:
        w, index = self.w, state.clamp_index(story, index)
        panel, size = story.panels[index], canvas_size(story.settings)
        sketch, canny, note = self.ws.sketch_file(story, index), None, ""
        value = editor_value(None, size)
        if ref := state.library_ref(story, index):  # one the library did not have when the story was opened
            note = (f"This panel's sketch `{ref}` is not in the sketch library: pick another one on the *Library* "
                    "tab, or draw one.")
        elif panel.sketch is not None and sketch is None:
            note = f"The sketch file `{panel.sketch}` is missing: draw or upload a new one."
        if sketch is not None:
            try:
                value, canny = editor_value(sketch, size), enlarged(canny_preview(sketch, story.settings))
            except SketchError as e:
                note = f"The sketch cannot be used: {e}"
        return {w.selector: gr.Radio(choices=state.panel_choices(story), value=index), w.prompt: panel.prompt,
                w.caption: panel.caption or "", w.seed: state.seed_text(panel.seed), w.editor: shown_on_canvas(value),
                w.canny: canny, w.panel_note: note, w.storyboard: self.storyboard(story)} | self.cast.view(story, index)

    def settings_view(self, story: Story) -> Update:
        return dict(zip(self.w.settings, values_of(story.settings), strict=True)) | {self.w.settings_note: ""}

    def results_view(self, pick: int = 0) -> Update:
        """The latest render; ``pick`` is the panel offered for regeneration.

        Files are sent as :meth:`Workspace.shown` copies, so a render rewriting ``out/`` never
        changes a file the browser is fetching; a stopped render offers no strip and no zip.
        """
        w, res = self.w, self.ws.results()
        if res is None:
            return {w.results: [], w.strip: None, w.regen_panel: gr.Dropdown(choices=[], value=None),
                    w.download: gr.DownloadButton(value=None, interactive=False)}
        items = [(str(self.ws.shown(p)) if p else placeholder(THUMB, "not rendered"), state.panel_caption(res.story, n))
                 for n, p in enumerate(res.panels)]
        complete = res.complete and res.strip is not None
        return {w.results: items, w.strip: str(self.ws.shown(res.strip)) if complete else None,
                w.regen_panel: gr.Dropdown(choices=state.panel_choices(res.story),
                                           value=min(pick, len(res.story.panels) - 1)),
                w.download: gr.DownloadButton(value=str(self.ws.shown(self.ws.results_zip())) if complete else None,
                                              interactive=complete)}

    def full_view(self, story: Story) -> Update:
        return ({self.w.story: story, self.w.s1_model: default_sketch_model(story.settings.model),
                 self.w.undo_btn: gr.Button(interactive=self.ws.trash_count() > 0)}
                | self.meta_view(story) | self.panel_view(story, 0) | self.settings_view(story)
                | self.cast.references_view(story))

    # --- loading and saving ---------------------------------------------------------------------

    def load(self) -> Update:
        """Page load: the autosaved story (a reload never loses work) and the last render."""
        try:
            story = self.ws.load()
        except StoryError as e:
            kept = self.ws.set_aside()
            gr.Warning(f"The autosaved story was unreadable ({'; '.join(e.problems)}); it is kept as {kept} "
                       "and a new story was started.")
            story = None
        if story is None:
            story = state.new_story()
            self.ws.save(story)
        out = self.full_view(story) | self.results_view()
        res = self.ws.results()
        out[self.w.status] = NOTHING_RENDERED if res is None else res.summary()
        return out

    def _opened(self, story: Story, notes: list[str], source: str) -> Update:
        """Another story replaces the working one, which is kept (with its render) to go back to."""
        kept = self.ws.keep_previous()
        self.ws.save(story)
        back = f" The story you had is kept in `{kept}` (open `{kept / 'story.json'}` to go back)." if kept else ""
        if notes:
            gr.Warning("Opened with problems: " + "; ".join(notes) + back)
        else:
            gr.Info(f"Opened {source}.{back}")
        return self.full_view(story) | self.results_view() | {self.w.status: NOTHING_RENDERED,
                                                              self.w.panel_note: back.strip()}

    def open_path(self, path: str) -> Update:
        if not path.strip():
            gr.Warning("Type the path of a story file (.json) or of its folder first")
            return self.unchanged()
        target = Path(path.strip()).expanduser()
        try:
            story, notes = self.ws.import_story(target / "story.json" if target.is_dir() else target)
        except StoryError as e:
            gr.Warning("Cannot open it: " + "; ".join(e.problems))
            return self.unchanged()
        return self._opened(story, notes, str(target))

    def upload_story(self, file: str | None) -> Update:
        if file is None:
            return self.unchanged()
        try:
            story, notes = self.ws.import_upload(Path(file))
        except StoryError as e:
            gr.Warning("Cannot open the upload: " + "; ".join(e.problems))
            return self.unchanged()
        return self._opened(story, notes, Path(file).name)

    def save_to(self, data: dict) -> Update:
        w = self.w
        if not data[w.path].strip():
            gr.Warning("Type where to save: a folder, or a file name ending in .json")
            return self.unchanged()
        try:
            story = self.commit_form(data)
            target = self.ws.export_story(story, Path(data[w.path].strip()))
        except StoryError as e:
            gr.Warning("Not saved: " + "; ".join(e.problems))
            return self.unchanged()
        except OSError as e:
            gr.Warning(f"Not saved: cannot write {e.filename or data[w.path]}: {e.strerror or e}")
            return self.unchanged()
        gr.Info(f"Saved {target} and its sketches")
        return {w.story: story}

    # --- story and panel edits ----------------------------------------------------------------

    def _saved(self, story: Story) -> Story:
        self.ws.save(story)
        return story

    def edit_meta(self, story: Story, title: str, style: str, characters: str, negative: str) -> Update:
        try:
            story = self._saved(state.set_meta(story, title, style, negative, characters))
        except StoryError as e:
            return {self.w.meta_note: problems(e)}
        return {self.w.story: story, self.w.meta_note: ""}

    def select(self, story: Story, index: int) -> Update:
        return self.panel_view(story, index)

    def select_from_storyboard(self, story: Story, evt: gr.SelectData) -> Update:
        return self.panel_view(story, evt.index)

    def edit_panel(self, story: Story, index: int | None, prompt: str, caption: str, seed: str | None,
                   note: str = "") -> Update:
        """A panel's text changed, by the user or by the page showing another panel (``note``: the panel's note)."""
        if index is None:
            return self.unchanged()  # sent with a panel of the story before (see widgets.PanelSelector)
        index = state.clamp_index(story, index)
        try:
            new = state.set_panel_text(story, index, prompt, caption, seed)
        except StoryError as e:
            return {self.w.panel_note: problems(e)}
        if new == story:  # the page's own update echoed back: keep its note, unless it was a refusal
            return self.unchanged() | ({self.w.panel_note: ""} if (note or "").startswith(NOT_APPLIED) else {})
        return {self.w.story: self._saved(new), self.w.panel_note: ""}

    def refresh_storyboard(self, story: Story) -> Update:
        return {self.w.storyboard: self.storyboard(story)}

    def add(self, story: Story, index: int, prompt: str) -> Update:
        try:
            story, index = state.add_panel(story, state.clamp_index(story, index), prompt)
        except StoryError as e:
            gr.Warning("; ".join(e.problems))
            return self.unchanged()
        return {self.w.story: self._saved(story), self.w.new_prompt: ""} | self.panel_view(story, index)

    def delete(self, story: Story, index: int | None) -> Update:
        """Delete the open panel; it goes to the trash (with its seed pinned), so "Undo delete" restores it."""
        if index is None:
            return self.unchanged()  # a click sent with a panel of the story before (see widgets.PanelSelector)
        index = state.clamp_index(story, index)
        gone = story.panels[index].model_copy(update={"seed": story.panel_seed(index)})
        try:
            story, shown = state.delete_panel(story, index)
        except StoryError as e:
            gr.Warning("; ".join(e.problems))
            return self.unchanged()
        self.ws.trash_panel(index, gone)
        note = f"Panel {index + 1} (“{gone.prompt[:40]}”) was deleted; *Undo delete* brings it back."
        return ({self.w.story: self._saved(story)} | self.panel_view(story, shown)
                | {self.w.panel_note: note, self.w.undo_btn: gr.Button(interactive=True)})

    def undo_delete(self, story: Story) -> Update:
        """Put the panel deleted last back where it was."""
        back = self.ws.untrash_panel()
        if back is None:
            gr.Warning("Nothing to undo: no panel was deleted")
            return self.unchanged() | {self.w.undo_btn: gr.Button(interactive=False)}
        index, panel = back
        index = min(index, len(story.panels))
        story = self._saved(panel_ops.insert_panel(story, index, panel))
        return ({self.w.story: story} | self.panel_view(story, index)
                | {self.w.panel_note: f"Panel {index + 1} is back.",
                   self.w.undo_btn: gr.Button(interactive=self.ws.trash_count() > 0)})

    def move(self, story: Story, index: int | None, delta: int) -> Update:
        if index is None:
            return self.unchanged()
        story, index = state.move_panel(story, state.clamp_index(story, index), delta)
        return {self.w.story: self._saved(story)} | self.panel_view(story, index)

    # --- sketches -------------------------------------------------------------------------------

    def _current_sketch(self, story: Story, index: int, size: tuple[int, int]) -> Image.Image | None:
        """The panel's sketch as the canvas shows it (None: no sketch, or one that cannot be read)."""
        path = self.ws.sketch_file(story, index)
        try:
            return None if path is None else shown_sketch(path, size)
        except SketchError:
            return None

    def _with_sketch(self, story: Story, index: int, sketch: Image.Image | None) -> Story:
        ref = None if sketch is None else self.ws.store_image(sketch)
        return self._saved(state.set_sketch_ref(story, index, ref))

    def draw(self, story: Story, index: int | None, value: dict | None) -> Update:
        """A stroke or an erase on the canvas: the panel's sketch takes the pixels the user changed.

        An empty canvas never deletes a sketch: the editor also empties itself when it cannot decode
        an uploaded file, so the page keeps the sketch, shows it again and says how to remove it.
        """
        w = self.w
        if not value or value.get("composite") is None or index is None:
            return self.unchanged()  # the editor echoing a value the page set (see canvas.editor_value)
        index, size = state.clamp_index(story, index), canvas_size(story.settings)
        current = self._current_sketch(story, index, size)
        sketch = merge_drawing(value["composite"], current, size)
        if same_sketch(sketch, current):
            return self.unchanged()
        if sketch is None and current is not None:
            return {w.editor: shown_on_canvas(editor_value(self.ws.sketch_file(story, index), size)),
                    w.panel_note: "**The canvas came back empty, so the sketch is kept** (a file that is not a "
                                  "picture, or every line erased). To take the sketch off this panel, press "
                                  "*Remove sketch*."}
        story = self._with_sketch(story, index, sketch)
        path, note = self.ws.sketch_file(story, index), ""
        try:
            canny = enlarged(canny_preview(path, story.settings)) if path else None
        except SketchError as e:  # marks too small to be lines at the render size
            canny, note = None, f"**The sketch has no usable lines yet:** {e}"
        return {w.story: story, w.canny: canny, w.storyboard: self.storyboard(story), w.panel_note: note}

    def remove_sketch(self, story: Story, index: int | None) -> Update:
        """Take the sketch off the open panel (its file stays in the work folder)."""
        if index is None:
            return self.unchanged()
        index = state.clamp_index(story, index)
        story = self._saved(state.set_sketch_ref(story, index, None))
        return {self.w.story: story} | self.panel_view(story, index)

    def upload_drawing(self, story: Story, index: int | None, value: dict | None) -> Update:
        """An uploaded picture: reduced (big photos in well under a second), cleaned into a sketch, shown cleaned."""
        picture = None if not value else value.get("background")
        if picture is None or index is None or is_blank(picture := reduced(picture)):
            return self.unchanged()  # the editor also reports the page's own white paper as an upload
        index, size = state.clamp_index(story, index), canvas_size(story.settings)
        try:
            sketch = normalize_sketch(picture, size)
        except SketchError as e:
            gr.Warning(f"This picture cannot be a sketch: {e}")
            return self.unchanged()
        if same_sketch(sketch, self._current_sketch(story, index, size)):
            return self.unchanged()
        return {self.w.story: (story := self._with_sketch(story, index, sketch))} | self.panel_view(story, index)

    def chosen_picture(self, story: Story, open_index: int | None, message: str) -> Update:
        """A picture chosen for the canvas, sent by the page's script (see app.JS) with the panel it was
        chosen on: it becomes that panel's sketch, cleaned.

        Only what shows that panel is redrawn, and the canvas only while that panel is open: a click on
        another panel made while the picture was on its way stands. A file that is not a picture keeps
        the sketch and says why.
        """
        try:
            chosen = json.loads(message)
            index, name, picture = int(chosen["panel"]), str(chosen["name"]), chosen["picture"]
        except (ValueError, TypeError, KeyError):
            return self.unchanged()  # "": no picture waiting (the button's script found none)
        if not 0 <= index < len(story.panels):
            gr.Warning(f"{name} is not used: its panel was deleted while it was on its way")
            return self.unchanged()
        is_open = open_index is not None and state.clamp_index(story, open_index) == index
        try:
            if picture is None:  # the browser could not reduce it, and it is too big to send as it is
                raise SketchError(f"it is larger than {MAX_UPLOAD_MB} MB and not a picture your browser can reduce")
            sketch = normalize_sketch(picture_from_data_url(picture), canvas_size(story.settings))
        except SketchError as e:
            note = f"**{name} cannot be Panel {index + 1}'s sketch, so its sketch is kept:** {e}"
            if is_open:
                return {self.w.panel_note: note}
            gr.Warning(note.replace("**", ""))
            return self.unchanged()
        story = self._with_sketch(story, index, sketch)
        if not is_open:
            gr.Info(f"{name} is Panel {index + 1}'s sketch now.")
            return {self.w.story: story, self.w.storyboard: self.storyboard(story)}
        view = self.panel_view(story, index)
        return {self.w.story: story} | {c: view[c] for c in (self.w.editor, self.w.canny, self.w.panel_note,
                                                             self.w.storyboard)}

    def edit_sketch(self, story: Story, index: int | None, op: str, **params: Any) -> Update:
        """One of :mod:`sketchstory.editing`'s operations on the panel's sketch (a new file; the old stays)."""
        if index is None:
            return self.unchanged()
        index = state.clamp_index(story, index)
        path = self.ws.sketch_file(story, index)
        if path is None:
            gr.Warning("This panel has no sketch to change yet: draw or upload one first")
            return self.unchanged()
        if op == "thickness":  # a step that shows at the sketch's resolution
            params = {"pixels": params["pixels"] * max(1, round(max(Image.open(path).size) / 256))}
        try:
            story = self._saved(panel_ops.edit_sketch(story, self.ws.root, index, op, **params))
        except (StoryError, SketchError, ValueError) as e:
            gr.Warning(f"The edit failed: {e}")
            return self.unchanged()
        return {self.w.story: story} | self.panel_view(story, index)

    # --- stage 1 and the library -----------------------------------------------------------------

    def make_candidates(self, story: Story, index: int, model: str | None, count: float, seed: str | None,
                        new_seed: bool = False) -> Update:
        """Stage 1 for the open panel: ``count`` candidate sketches from its prompt."""
        w, index = self.w, state.clamp_index(story, index)
        model = (model or "").strip() or default_sketch_model(story.settings.model)
        try:
            seed = secrets.randbelow(state.PAGE_SEED_LIMIT) if new_seed else state.parse_seed(seed, "candidate seed")
        except StoryError as e:
            raise user_error("; ".join(e.problems)) from None
        self.renderer.release()
        try:
            found = sketch_candidates(story, index, self.ws.root / "candidates", model, int(count), seed,
                                      self.renderer.device)
        except ModelLoadError as e:
            raise user_error(f"The sketch model cannot be loaded: {e}") from None
        except (SketchError, ValueError, RuntimeError) as e:
            raise user_error(f"No candidates: {e}") from None
        items = [(str(c.path), f"{c.index + 1}{' (no lines)' if c.blank else ''}") for c in found]
        blank = sum(c.blank for c in found)
        note = (f"{len(found)} candidates for panel {index + 1} from `{model}`"
                f"{f'; {blank} came out without usable lines' if blank else ''}.")
        return {w.s1_gallery: items, w.s1_paths: [str(c.path) for c in found], w.s1_seed: state.seed_text(seed),
                w.s1_note: note}

    def search_library(self, text: str) -> Update:
        w = self.w
        try:
            found = search_library(self.ws.library, text)
        except LibraryError as e:
            return {w.lib_gallery: [], w.lib_paths: [], w.lib_note: str(e)}
        note = f"{len(found)} sketches." if found else "Nothing found: try other words, or an empty search to browse."
        return {w.lib_gallery: [(str(f.path), f"{f.label}: {f.prompt[:40]}") for f in found],
                w.lib_paths: [str(f.path) for f in found], w.lib_note: note}

    def pick_sketch(self, story: Story, index: int | None, paths: list[str], evt: gr.SelectData) -> Update:
        """A stage-1 candidate or a library sketch clicked: it becomes the open panel's sketch (copied in)."""
        if index is None:
            return self.unchanged()
        path, index = Path(paths[evt.index]), state.clamp_index(story, index)
        if is_blank(Image.open(path)):
            gr.Warning("This candidate has no lines; pick another one")
            return self.unchanged()
        ref = self.ws.store_bytes(path.read_bytes(), path.suffix)
        return {self.w.story: (story := self._saved(state.set_sketch_ref(story, index, ref)))} | self.panel_view(
            story, index)

    # --- settings -------------------------------------------------------------------------------

    def edit_settings(self, data: dict) -> Update:
        w, story = self.w, data[self.w.story]
        try:
            new = apply_settings(story, [data[c] for c in w.settings])
            native = switched_model(story.settings, new.settings)
            new = self._saved(new.with_settings(native) if native else new)
        except StoryError as e:
            return {w.settings_note: problems(e)}
        out: Update = {w.story: new, w.settings_note: ""}
        if native:  # a new model: its native size and steps, where the old model's were
            out |= self.settings_view(new) | {w.settings_note: "Size, steps and guidance follow the "
                                               f"`{new.settings.model}` model: " + ", ".join(
                                                   f"{k} {v}" for k, v in native.items()) + "."}
        if new.settings != story.settings:  # the canvas size and the Canny preview follow the settings
            out |= self.panel_view(new, data[w.selector])
        return out

    # --- rendering ------------------------------------------------------------------------------

    def commit_form(self, data: dict) -> Story:
        """The working story with every field of the form applied; ``StoryError`` if any is invalid."""
        w, story = self.w, data[self.w.story]
        story = state.set_meta(story, data[w.title], data[w.style], data[w.negative], data[w.characters])
        if data[w.selector] is not None:  # None: the fields may still show a panel of the story before
            index = state.clamp_index(story, data[w.selector])
            story = state.set_panel_text(story, index, data[w.prompt], data[w.caption], data[w.seed])
        return self._saved(apply_settings(story, [data[c] for c in w.settings]))

    def generate(self, data: dict) -> Iterator[Update]:
        story = self._form_or_error(data)
        yield {self.w.story: story}
        yield from self._render(story, None, data[self.w.keep_memory])

    def regenerate(self, data: dict) -> Iterator[Update]:
        story = self._form_or_error(data)
        res, index = self.ws.results(), data[self.w.regen_panel]
        if res is None or len(res.story.panels) != len(story.panels):
            raise user_error("Generate the whole story first: the last render does not have this story's panels.")
        if index is None:
            raise user_error("Pick the panel to regenerate (click it in the panels above).")
        story = self._saved(state.reseed(story, int(index)))
        yield {self.w.story: story} | self.panel_view(story, data[self.w.selector])
        yield from self._render(story, frozenset({int(index)}), data[self.w.keep_memory], pick=int(index))

    def stop(self) -> None:
        self.renderer.cancel()

    def pick_result(self, evt: gr.SelectData) -> Update:
        return {self.w.regen_panel: evt.index}

    def _form_or_error(self, data: dict) -> Story:
        try:
            return self.commit_form(data)
        except StoryError as e:
            raise user_error("The story is not ready: " + "; ".join(e.problems)) from None

    def _render(self, story: Story, only: frozenset[int] | None, keep_memory: bool,
                pick: int = 0) -> Iterator[Update]:
        w, tracker, report = self.w, PanelProgress(story), None
        started, last, shown = time.time(), 0.0, -1
        yield {w.status: f"Loading the `{story.settings.model}` model…\n\n" + tracker.markdown()}
        try:
            for event in self.renderer.run(story, self.ws.root, self.ws.out, only=only, keep_memory=keep_memory):
                if isinstance(event, RunReport):
                    report = event
                    continue
                tracker.update(event)
                if isinstance(event, Saved) or time.time() - last >= PROGRESS_INTERVAL_S:  # a saved panel shows at once
                    last = time.time()
                    done, total = tracker.done, max(tracker.total, 1)
                    head = f"Rendering: step {done} of {total} ({100 * done // total} %)"
                    out: Update = {w.status: head + "\n\n" + tracker.markdown()}
                    fresh = self._fresh_panels(story, started)
                    if len(fresh) != shown:  # a panel finished: show it
                        shown, out[w.results] = len(fresh), fresh
                    yield out
        except Cancelled:
            self.ws.stopped()
            yield ({w.status: "**Stopped.** Every finished panel is kept; generate again to render the rest "
                              "(the strip and the download come with a finished render)."}
                   | self.results_view(pick) | {w.results: self._fresh_panels(story, started)})
            return
        except ModelLoadError as e:
            raise user_error(f"The model cannot be loaded: {e}") from None
        except (StoryError, SketchError, ValueError, RuntimeError) as e:
            raise user_error(f"The render did not start or stopped: {e}") from None
        except Exception as e:
            log.exception("render failed")
            raise gr.Error(f"The render failed ({type(e).__name__}: {e}); finished panels are kept.") from None
        assert report is not None  # Renderer.run always ends with the report
        final = ({n: "not rendered yet" for n in report.missing} | {n: "kept (unchanged)" for n in report.reused}
                 | {n: "recomputed for memory" for n in report.recomputed} | {n: "rendered" for n in report.rendered})
        summary = (f"**Done** in {report.seconds:.1f} s: {len(report.rendered)} rendered, {len(report.reused)} kept, "
                   f"{len(report.recomputed)} recomputed for the memory of others."
                   + "".join(f"\n\n**Warning:** {warning}" for warning in report.warnings))
        yield {w.status: summary + "\n\n" + tracker.markdown(final)} | self.results_view(pick)

    def _fresh_panels(self, story: Story, since: float) -> list[tuple[str, str]]:
        """The panels this job has written so far."""
        out = []
        for n in range(len(story.panels)):
            path = self.ws.out / "panels" / f"panel_{n:02d}.png"
            if path.is_file() and path.stat().st_mtime >= since:
                out.append((str(self.ws.shown(path)), state.panel_caption(story, n)))
        return out
