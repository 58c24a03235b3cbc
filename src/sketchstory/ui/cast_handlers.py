"""The page's events for characters: who is in the open panel and where (the *Characters* tab), the
panel's setting, and each character's reference picture.

Edits go through :mod:`sketchstory.cast`, as ``sketchstory story place/character/setting`` do, so
the page and the command line write the same story file; a reference picture is copied into the
work folder (``refs/``), so the autosaved story never points at a browser's temporary upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from sketchstory import cast
from sketchstory.pipeline.model_settings import rerouted
from sketchstory.pipeline.regions import routed
from sketchstory.sketches import SketchError
from sketchstory.story import Story, StoryError
from sketchstory.ui import state
from sketchstory.ui.cast_view import (
    box_from_corners,
    box_text,
    click_point,
    legend,
    parse_box,
    placement_picture,
)
from sketchstory.ui.settings_form import values_of
from sketchstory.ui.widgets import Widgets
from sketchstory.ui.workspace import Workspace

Update = dict[Any, Any]


class CastHandlers:
    def __init__(self, workspace: Workspace, widgets: Widgets) -> None:
        self.ws, self.w = workspace, widgets

    # --- views --------------------------------------------------------------------------------

    def view(self, story: Story, index: int, name: str | None = None,
             corner: tuple[float, float] | None = None) -> Update:
        """The open panel's setting and cast; ``name``: the character to place (kept if still in the panel)."""
        w, placements = self.w, story.placements(index)
        members = [p.name for p in placements]
        name = name if name in members else (members[0] if members else None)
        box = next((p.box for p in placements if p.name == name), None)
        picture = placement_picture(story, index, self.ws.sketch_file(story, index), self.ws.root, corner)
        return {w.setting: story.panels[index].setting or "",
                w.cast_members: gr.CheckboxGroup(choices=[c.name for c in story.characters], value=members),
                w.cast_name: gr.Dropdown(choices=members, value=name), w.cast_picture: picture,
                w.cast_corner: corner, w.cast_box: box_text(box), w.cast_legend: legend(story, index)}

    def references_view(self, story: Story, name: str | None = None, note: str = "") -> Update:
        w, names = self.w, [c.name for c in story.characters]
        name = name if name in names else (names[0] if names else None)
        reference = next((c.reference for c in story.characters if c.name == name), None)
        shown = str(self.ws.root / reference) if reference and (self.ws.root / reference).is_file() else None
        return {w.ref_name: gr.Dropdown(choices=names, value=name), w.ref_image: shown,
                w.ref_note: note or ("" if names else "Add characters above first (one per line).")}

    def refresh(self, story: Story, index: int | None, ref_name: str | None) -> Update:
        """After the characters' text changed: names to tick and to give pictures to."""
        out = self.references_view(story, ref_name)
        return out if index is None else out | self.view(story, state.clamp_index(story, index))

    # --- edits ----------------------------------------------------------------------------------

    def _saved(self, before: Story, story: Story) -> tuple[Story, Update]:
        """Save an edit; one that starts or stops routing MAGA by character also takes the model's MAGA
        settings for that (``pipeline.model_settings.rerouted``), shown in the settings form."""
        changes = rerouted(before, story)
        story = story.with_settings(changes) if changes else story
        self.ws.save(story)
        if not changes:
            return story, {}
        said = ", ".join(f"{k} {v}" for k, v in changes.items())
        which = "placed characters" if routed(story) else "a story without placed characters"
        return story, dict(zip(self.w.settings, values_of(story.settings), strict=True)) | {
            self.w.settings_note: f"MAGA follows the `{story.settings.model}` model's settings for {which}: {said}."}

    def _edited(self, before: Story, story: Story, index: int, name: str | None = None) -> Update:
        story, settings = self._saved(before, story)
        return {self.w.story: story, self.w.panel_note: ""} | self.view(story, index, name) | settings

    def _refused(self, err: StoryError) -> Update:
        return {self.w.panel_note: "**Not applied:** " + "; ".join(err.problems)}

    def members(self, story: Story, index: int | None, names: list[str]) -> Update:
        if index is None:
            return {self.w.story: gr.skip()}
        index = state.clamp_index(story, index)
        try:
            return self._edited(story, cast.set_members(story, index, list(names or [])), index)
        except StoryError as e:
            return self._refused(e)

    def pick(self, story: Story, index: int | None, name: str | None) -> Update:
        """Another character to place: its box, and a box drawing started for the last one is dropped."""
        if index is None:
            return {self.w.story: gr.skip()}
        return self.view(story, state.clamp_index(story, index), name)

    def click(self, story: Story, index: int | None, name: str | None, corner: list[float] | None,
              evt: gr.SelectData) -> Update:
        """A click on the picture: the first corner of the box, or the second, which places the character."""
        if index is None:
            return {self.w.story: gr.skip()}
        index = state.clamp_index(story, index)
        if name is None:
            return self._refused(StoryError(["tick who is in this panel first, then pick the character to place"]))
        point = click_point(evt.index, story.settings)
        if corner is None:
            return self.view(story, index, name, point) | {
                self.w.panel_note: f"Now click the opposite corner of {name}'s box."}
        try:
            box = box_from_corners((corner[0], corner[1]), point)
            return self._edited(story, cast.place(story, self.ws.root, index, name, box=box), index, name)
        except StoryError as e:
            return self._refused(e) | self.view(story, index, name)

    def place_typed(self, story: Story, index: int | None, name: str | None, text: str) -> Update:
        if index is None:
            return {self.w.story: gr.skip()}
        index = state.clamp_index(story, index)
        try:
            if name is None:
                raise StoryError(["tick who is in this panel first, then pick the character to place"])
            return self._edited(story, cast.place(story, self.ws.root, index, name, box=parse_box(text)), index, name)
        except StoryError as e:
            return self._refused(e)

    def unbox(self, story: Story, index: int | None, name: str | None) -> Update:
        """The character stays in the panel without a box or mask (it stands on the sketch's subject)."""
        if index is None or name is None:
            return {self.w.story: gr.skip()}
        index = state.clamp_index(story, index)
        return self._edited(story, cast.place(story, self.ws.root, index, name), index, name)

    def edit_setting(self, story: Story, index: int | None, text: str) -> Update:
        if index is None:
            return {self.w.story: gr.skip()}
        index = state.clamp_index(story, index)
        setting = (text or "").strip() or None
        if setting == story.panels[index].setting:
            return {self.w.story: gr.skip()}  # the page's own update echoed back
        try:
            new = cast.set_setting(story, index, setting)
        except StoryError as e:
            return self._refused(e)
        new, settings = self._saved(story, new)
        return {self.w.story: new, self.w.panel_note: ""} | settings

    # --- reference pictures ---------------------------------------------------------------------

    def pick_reference(self, story: Story, name: str | None) -> Update:
        return self.references_view(story, name)

    def upload_reference(self, story: Story, name: str | None, file: str | None) -> Update:
        if file is None:
            return {self.w.story: gr.skip()}
        if name is None:
            return self.references_view(story, note="**Not applied:** add a character first, then its picture.")
        try:
            new = cast.set_character(story, self.ws.root, name, reference=Path(file))
        except (StoryError, SketchError) as e:
            problem = "; ".join(e.problems) if isinstance(e, StoryError) else str(e)
            return self.references_view(story, name, f"**Not applied:** {problem}")
        self.ws.save(new)
        return {self.w.story: new} | self.references_view(new, name, f"{name} follows this picture now.")

    def clear_reference(self, story: Story, name: str | None) -> Update:
        if name is None:
            return {self.w.story: gr.skip()}
        new = cast.set_character(story, self.ws.root, name, drop_reference=True)
        self.ws.save(new)
        return {self.w.story: new} | self.references_view(new, name, f"{name} has no reference picture now.")
