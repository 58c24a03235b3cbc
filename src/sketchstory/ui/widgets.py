"""The page's layout: every component, created inside a ``gr.Blocks`` context, held by :class:`Widgets`.

Two tabs follow the workflow: *Story and sketches* (the story, its panels, a canvas per panel)
and *Render* (stage-2 settings, live progress, results, regeneration, download). ``elem_id`` s
are stable names the browser tests use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from sketchstory.models import SKETCH_REGISTRY
from sketchstory.sketches import MAX_PIXELS
from sketchstory.ui.canvas import CANVAS_LONG_SIDE, MAX_UPLOAD_MB, UPLOAD_LONG_SIDE
from sketchstory.ui.settings_form import FIELDS, Field

SettingInput = gr.Dropdown | gr.Checkbox | gr.Slider | gr.Number | gr.Textbox
# The server's limit on uploaded files (launch's max_file_size); said beside the canvas.
MAX_UPLOAD = f"{MAX_UPLOAD_MB}mb"
SEED_INFO = "A whole number; empty: derived from the story seed and the position."


class PanelSelector(gr.Radio):
    """The panel radio, which lets a stale choice through as None instead of raising.

    Events queued before a story with fewer panels was opened still carry the old choice (e.g.
    panel 3 of a 1-panel story); Gradio's Radio raises "not in the list of choices" and logs a
    traceback. The handlers ignore an event whose panel is None.
    """

    is_template = True  # drawn by the browser as a plain Radio

    def preprocess(self, payload: str | int | float | None) -> str | int | float | None:
        return payload if payload in [value for _, value in self.choices] else None


@dataclass
class Widgets:
    story: gr.State
    # story
    title: gr.Textbox
    style: gr.Textbox
    characters: gr.Textbox
    negative: gr.Textbox
    meta_note: gr.Markdown
    ref_name: gr.Dropdown
    ref_image: gr.Image
    ref_note: gr.Markdown
    path: gr.Textbox
    open_btn: gr.Button
    save_btn: gr.Button
    upload_btn: gr.UploadButton
    # panels
    selector: PanelSelector
    new_prompt: gr.Textbox
    add_btn: gr.Button
    delete_btn: gr.Button
    undo_btn: gr.Button
    left_btn: gr.Button
    right_btn: gr.Button
    storyboard: gr.Gallery
    prompt: gr.Textbox
    caption: gr.Textbox
    seed: gr.Textbox
    setting: gr.Textbox
    panel_note: gr.Markdown
    editor: gr.ImageEditor
    chosen: gr.Textbox
    chosen_btn: gr.Button
    remove_sketch_btn: gr.Button
    canny: gr.Image
    flip_btn: gr.Button
    thicker_btn: gr.Button
    thinner_btn: gr.Button
    # who is in the open panel, and where
    cast_members: gr.CheckboxGroup
    cast_name: gr.Dropdown
    cast_picture: gr.Image
    cast_corner: gr.State
    cast_box: gr.Textbox
    cast_place_btn: gr.Button
    cast_unbox_btn: gr.Button
    cast_legend: gr.Markdown
    # stage 1 and the library
    s1_model: gr.Dropdown
    s1_count: gr.Slider
    s1_seed: gr.Textbox
    s1_btn: gr.Button
    s1_new_btn: gr.Button
    s1_gallery: gr.Gallery
    s1_paths: gr.State
    s1_note: gr.Markdown
    lib_query: gr.Textbox
    lib_btn: gr.Button
    lib_gallery: gr.Gallery
    lib_paths: gr.State
    lib_note: gr.Markdown
    # render
    settings: list[SettingInput]
    keep_memory: gr.Checkbox
    settings_note: gr.Markdown
    generate_btn: gr.Button
    stop_btn: gr.Button
    status: gr.Markdown
    results: gr.Gallery
    strip: gr.Image
    regen_panel: gr.Dropdown
    regen_btn: gr.Button
    download: gr.DownloadButton

    @property
    def meta(self) -> list[gr.Textbox]:
        return [self.title, self.style, self.characters, self.negative]

    @property
    def cast(self) -> list[gr.components.Component]:
        """What the *Characters* tab shows of the open panel (see CastHandlers.view)."""
        return [self.setting, self.cast_members, self.cast_name, self.cast_picture, self.cast_corner, self.cast_box,
                self.cast_legend]

    @property
    def references(self) -> list[gr.components.Component]:
        return [self.ref_name, self.ref_image, self.ref_note]

    @property
    def panel_fields(self) -> list[gr.components.Component]:
        return [self.selector, self.prompt, self.caption, self.seed]

    @property
    def form(self) -> list[gr.components.Component]:
        """Every input a render commits first, so a keystroke still in flight is not lost."""
        return [*self.meta, *self.panel_fields, *self.settings, self.keep_memory]


def _setting(field: Field) -> SettingInput:
    common: dict[str, Any] = {"label": field.label, "info": field.info,
                              "elem_id": "setting-" + field.key.replace(".", "-")}
    match field.kind:
        case "choice":
            return gr.Dropdown(choices=list(field.choices), allow_custom_value=field.custom, **common)
        case "bool":
            return gr.Checkbox(**common)
        case "slider":
            return gr.Slider(minimum=field.minimum or 0, maximum=field.maximum or 100, step=field.step, **common)
        case "seed":  # text: a browser's number field rounds seeds beyond 2**53
            return gr.Textbox(**common)
        case "int" | "float":
            # No minimum/maximum here: Gradio would reject each keystroke on the way to a valid
            # number; the settings form checks the value and explains a wrong one.
            return gr.Number(step=field.step or 1, precision=0 if field.kind == "int" else None, **common)
        case _:
            return gr.Textbox(**common)


def _settings(group: str) -> dict[str, SettingInput]:
    return {f.key: _setting(f) for f in FIELDS if f.group == group}


def _stage1_tab(w: dict) -> None:
    gr.Markdown("Sketches a text-to-image model draws from this panel's prompt (stage 1). Click one to make it "
                "the panel's sketch; then edit it on the *Draw* tab.", elem_classes=["hint"])
    with gr.Row():
        w["s1_model"] = gr.Dropdown(choices=list(SKETCH_REGISTRY), allow_custom_value=True, label="Sketch model",
                                    info="demo: the bundled model; sdxl: the thesis's (its weights must be here); "
                                         "or a hub id, folder or file.", elem_id="s1-model")
        w["s1_count"] = gr.Slider(1, 8, value=4, step=1, label="Candidates", elem_id="s1-count")
        w["s1_seed"] = gr.Textbox(label="Candidate seed", info="A whole number; empty: the panel's seed.",
                                  elem_id="s1-seed")
    with gr.Row():
        w["s1_btn"] = gr.Button("Make candidates", variant="primary", size="md", elem_id="s1-make")
        w["s1_new_btn"] = gr.Button("New seed, new candidates", size="md", elem_id="s1-new")
    w["s1_gallery"] = gr.Gallery(label="Candidates (click one to use it)", columns=4, height=260,
                                 allow_preview=False, object_fit="contain", format="png", elem_id="s1-gallery",
                                 elem_classes=["pixelated"])
    w["s1_paths"] = gr.State([])
    w["s1_note"] = gr.Markdown(elem_id="s1-note")


def _library_tab(w: dict) -> None:
    gr.Markdown("Sketches from the sketch library (`sketchstory library`). Search by words; click one to make "
                "it the panel's sketch.", elem_classes=["hint"])
    with gr.Row(equal_height=True):
        w["lib_query"] = gr.Textbox(label="Search the sketch library", placeholder="wizard hat (empty: browse)",
                                    scale=4, elem_id="lib-query")
        w["lib_btn"] = gr.Button("Search", size="md", scale=1, elem_id="lib-search")
    w["lib_gallery"] = gr.Gallery(label="Library sketches (click one to use it)", columns=4, height=260,
                                  allow_preview=False, object_fit="contain", format="png", elem_id="lib-gallery")
    w["lib_paths"] = gr.State([])
    w["lib_note"] = gr.Markdown(elem_id="lib-note")


def _cast_tab(w: dict) -> None:
    gr.Markdown("Who is in this panel, and where. Give each character a box (click two opposite corners on the "
                "picture, or type them) and consistency memory keeps characters apart: each reads only its own "
                "earlier looks, backgrounds only those of the same setting. A lone character needs no box: it "
                "stands on the sketch's subject.", elem_classes=["hint"])
    w["cast_members"] = gr.CheckboxGroup(label="In this panel", elem_id="cast-members",
                                         info="The story's characters (left column). None ticked: no one.")
    with gr.Row(equal_height=True):
        w["cast_name"] = gr.Dropdown(label="Character to place", scale=2, elem_id="cast-name")
        w["cast_box"] = gr.Textbox(label="Box: x0, y0, x1, y1", info="Fractions of the panel (0..1).", scale=3,
                                   placeholder="0.05, 0.2, 0.5, 0.95", elem_id="cast-box")
    with gr.Row():
        w["cast_place_btn"] = gr.Button("Place in this box", size="sm", elem_id="cast-place")
        w["cast_unbox_btn"] = gr.Button("No box (on the sketch's subject)", size="sm", elem_id="cast-unbox")
    w["cast_picture"] = gr.Image(label="Click two opposite corners to box the character", interactive=False,
                                 format="png", elem_id="cast-picture")
    w["cast_corner"] = gr.State(None)
    w["cast_legend"] = gr.Markdown(elem_id="cast-legend")


def build_widgets(work_folder: str) -> Widgets:
    """Lay the page out (call inside ``gr.Blocks``)."""
    gr.Markdown("# sketchstory\nWrite a story as panels, give each panel a sketch, and render them as one "
                f"consistent comic. Everything is saved as you go in `{work_folder}`.")
    w: dict = {"story": gr.State()}
    with gr.Tabs():
        with gr.Tab("1 · Story and sketches", id="story-tab"), gr.Row():
            with gr.Column(scale=1, min_width=280):
                w["title"] = gr.Textbox(label="Title", elem_id="story-title")
                w["style"] = gr.Textbox(label="Style", info="Added to every panel's prompt, e.g. "
                                        "'storybook illustration'.", elem_id="story-style")
                w["characters"] = gr.Textbox(
                    label="Characters", lines=3, elem_id="story-characters",
                    info="One per line, 'name: description'. A panel whose prompt names a character gets "
                         "its description, which keeps it looking the same.",
                    placeholder="wizard: a young wizard in a blue robe")
                w["negative"] = gr.Textbox(label="Negative prompt", info="What no panel should show.",
                                           elem_id="story-negative")
                w["meta_note"] = gr.Markdown(elem_id="meta-note")
                with gr.Accordion("Reference pictures", open=False, elem_id="references"):
                    w["ref_name"] = gr.Dropdown(label="Character", elem_id="ref-name",
                                                info="A picture of the character that every panel it is in "
                                                     "follows (in stories that place characters).")
                    w["ref_image"] = gr.Image(label="Reference picture", type="filepath", format="png",
                                              sources=("upload", "clipboard"), height=200, elem_id="ref-image")
                    w["ref_note"] = gr.Markdown(elem_id="ref-note")
                with gr.Accordion("Open or save a story file", open=False):
                    w["path"] = gr.Textbox(label="Story file or folder on this computer",
                                           placeholder="examples/wizard/story.json", elem_id="story-path")
                    with gr.Row():
                        w["open_btn"] = gr.Button("Open", size="sm", elem_id="open-story")
                        w["save_btn"] = gr.Button("Save", size="sm", elem_id="save-story")
                    w["upload_btn"] = gr.UploadButton("Upload a story (.json or .zip)", size="sm",
                                                      file_types=[".json", ".zip"], elem_id="upload-story")
            with gr.Column(scale=3):
                with gr.Row(equal_height=True):
                    w["selector"] = PanelSelector(label="Panel", elem_id="panel-selector", scale=3)
                    w["left_btn"] = gr.Button("◀ Earlier", size="sm", scale=0, min_width=90, elem_id="move-left")
                    w["right_btn"] = gr.Button("Later ▶", size="sm", scale=0, min_width=90, elem_id="move-right")
                    w["delete_btn"] = gr.Button("Delete", size="sm", variant="stop", scale=0, min_width=80,
                                                elem_id="delete-panel")
                    w["undo_btn"] = gr.Button("Undo delete", size="sm", scale=0, min_width=100,
                                              interactive=False, elem_id="undo-delete")
                with gr.Row(equal_height=True):
                    w["new_prompt"] = gr.Textbox(label="New panel's prompt", scale=4, elem_id="new-panel-prompt",
                                                 placeholder="inserted after the open panel")
                    w["add_btn"] = gr.Button("Add panel", size="sm", scale=1, elem_id="add-panel")
                w["storyboard"] = gr.Gallery(label="Storyboard (click a panel to open it)", height=190,
                                             allow_preview=False, object_fit="contain", format="png",
                                             elem_id="storyboard")
                with gr.Row():
                    with gr.Column(scale=2, min_width=260):
                        w["prompt"] = gr.Textbox(label="Prompt", lines=3, elem_id="panel-prompt",
                                                 info="What the panel shows.")
                        w["caption"] = gr.Textbox(label="Caption", elem_id="panel-caption",
                                                  info="Printed under the panel in the comic strip.")
                        w["seed"] = gr.Textbox(label="Seed", elem_id="panel-seed", info=SEED_INFO)
                        w["setting"] = gr.Textbox(label="Setting", elem_id="panel-setting",
                                                  placeholder="forest", info="Where the panel takes place: "
                                                  "backgrounds share memory only within one setting.")
                        w["panel_note"] = gr.Markdown(elem_id="panel-note")
                        w["canny"] = gr.Image(label="What stage 2 sees: the sketch's Canny edges", height=200,
                                              interactive=False, format="png", elem_id="canny-preview",
                                              elem_classes=["pixelated"])
                    with gr.Column(scale=3, min_width=400), gr.Tabs():
                        with gr.Tab("Draw", id="draw-tab"):
                            w["editor"] = gr.ImageEditor(
                                label="Sketch",
                                type="pil", image_mode="RGB", format="png", layers=False,
                                sources=("upload", "clipboard"), transforms=(),
                                canvas_size=(CANVAS_LONG_SIDE, CANVAS_LONG_SIDE),
                                brush=gr.Brush(colors=["#000000", "#ffffff"], color_mode="fixed",
                                               default_size=4),
                                eraser=gr.Eraser(default_size=14), height=600, elem_id="sketch-canvas")
                            # The page's script sends pictures chosen for the canvas here (see app.JS).
                            w["chosen"] = gr.Textbox(visible="hidden", elem_id="chosen-picture-data")
                            w["chosen_btn"] = gr.Button(visible="hidden", elem_id="chosen-picture")
                            gr.Markdown("Draw with the brush in black; remove lines with the eraser "
                                        "or white paint; the image tool takes a drawing or photo of any size, "
                                        f"which your browser reduces to at most {UPLOAD_LONG_SIDE} px (a file it "
                                        f"cannot show is sent as it is: up to {MAX_UPLOAD_MB} MB and "
                                        f"{MAX_PIXELS // 10**6} megapixels) and the server cleans into black "
                                        "lines on white.",
                                        elem_classes=["hint"], elem_id="sketch-help")
                            with gr.Row():
                                w["flip_btn"] = gr.Button("Flip ↔", size="sm", elem_id="flip-sketch")
                                w["thicker_btn"] = gr.Button("Thicker lines", size="sm",
                                                             elem_id="thicker-sketch")
                                w["thinner_btn"] = gr.Button("Thinner lines", size="sm",
                                                             elem_id="thinner-sketch")
                                w["remove_sketch_btn"] = gr.Button("Remove sketch", size="sm",
                                                                   elem_id="remove-sketch")
                        with gr.Tab("Candidates (stage 1)", id="stage1-tab"):
                            _stage1_tab(w)
                        with gr.Tab("Library", id="library-tab"):
                            _library_tab(w)
                        with gr.Tab("Characters", id="cast-tab"):
                            _cast_tab(w)
        with gr.Tab("2 · Render", id="render-tab"), gr.Row():
            with gr.Column(scale=2, min_width=320):
                w["settings_note"] = gr.Markdown(elem_id="settings-note")
                with gr.Accordion("Model and sampling", open=True):
                    sampling = _settings("sampling")
                with gr.Accordion("Consistency (MAGA)", open=True):
                    maga = _settings("maga")
                with gr.Accordion("Advanced", open=False):
                    advanced = _settings("advanced")
                    w["keep_memory"] = gr.Checkbox(
                        value=True, label="Keep the consistency memory on disk", elem_id="keep-memory",
                        info="Makes regenerating one panel faster; uses disk space (a lot at 512 px).")
                made = sampling | maga | advanced
                w["settings"] = [made[f.key] for f in FIELDS]  # the order the settings form expects
            with gr.Column(scale=3, elem_id="render-main"):  # first on a phone (see app.CSS)
                with gr.Row():
                    w["generate_btn"] = gr.Button("Generate the story", variant="primary", elem_id="generate")
                    w["stop_btn"] = gr.Button("Stop", variant="stop", scale=0, min_width=90, elem_id="stop")
                w["status"] = gr.Markdown("Nothing rendered yet.", elem_id="render-status")
                w["results"] = gr.Gallery(label="Panels (click one to pick it for regeneration)", columns=6,
                                          height=240, object_fit="contain", allow_preview=False,
                                          format="png", elem_id="results", elem_classes=["pixelated"])
                with gr.Row(equal_height=True):
                    w["regen_panel"] = gr.Dropdown(label="Panel to regenerate", scale=2, elem_id="regen-panel")
                    w["regen_btn"] = gr.Button("Regenerate it with a new seed", size="md", scale=2,
                                               elem_id="regenerate")
                    w["download"] = gr.DownloadButton("Download everything (.zip)", interactive=False, size="md",
                                                      scale=2, elem_id="download")
                w["strip"] = gr.Image(label="Comic strip", interactive=False, format="png", elem_id="strip",
                                      elem_classes=["pixelated"])
    return Widgets(**w)
