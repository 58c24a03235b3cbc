"""The web application: builds the page, wires its events, serves it on localhost.

Edits run one at a time in the order they were made (one concurrency group), so a keystroke and
the click after it never race on the working story; renders run in their own group, one at a
time, so editing stays responsive while a render runs.

Text fields save on ``change``, not ``input``: the Textbox sends ``input`` for typed keys only, so a
paste, a cut or a Backspace would be shown and never saved.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from sketchstory.ui import DEFAULT_WORK
from sketchstory.ui.cast_handlers import CastHandlers
from sketchstory.ui.canvas import MAX_UPLOAD_MB, UPLOAD_LONG_SIDE
from sketchstory.ui.handlers import Handlers
from sketchstory.ui.render import Renderer
from sketchstory.ui.widgets import MAX_UPLOAD, Widgets, build_widgets
from sketchstory.ui.workspace import Workspace

# Tiny renders (32-64 px) stay crisp when the browser enlarges them; the strip fills its column;
# storyboard thumbnails stay small however few panels there are (Gradio sizes them to fill the row).
CSS = """
.pixelated img { image-rendering: pixelated; }
#strip .image-frame, #strip img { width: 100% !important; height: auto !important; }
#strip img { max-height: 80vh; object-fit: contain; image-rendering: pixelated; }
#storyboard .grid-container { grid-template-columns: repeat(auto-fill, minmax(110px, 130px)) !important; }
.hint p { font-size: 0.85em; }
/* Text at WCAG AA contrast (4.5:1): Gradio's help text, slider ends, selected tab, red buttons and
   footer are paler than that on white. */
:root, .dark { --block-info-text-color: var(--body-text-color); }
[data-testid="block-info"] + span, .info, .hint p, .min_value, .max_value, footer, footer * {
  color: var(--body-text-color) !important; }
button[role="tab"][aria-selected="true"] { color: #9a3412 !important; }
.dark button[role="tab"][aria-selected="true"] { color: #fdba74 !important; }
button.stop, #delete-panel, #stop { background: #b91c1c !important; color: #fff !important; }
button.primary { background: #c2410c !important; color: #fff !important; }
#canny-preview .image-container { padding-top: 2.2em; }  /* its label no longer covers the image */
#sketch-canvas.has-sketch .empty.wrap { display: none; }  /* the upload prompt, over a sketch */
#render-status td, #render-status th { word-break: keep-all; overflow-wrap: normal; }
@media (max-width: 640px) {
  #render-main { order: -1; }  /* Generate first on a phone, settings below */
  /* The canvas starts right of the editor's floating toolbar, which otherwise covers the drawing. */
  #sketch-canvas .pixi-target, #sketch-canvas .pixi-target-crop {
    margin-left: 52px !important; width: calc(100% - 52px) !important; }
}
"""

# Text alternatives Gradio cannot set itself: the drawing canvas gets a label naming the open panel
# and its sketch, storyboard thumbnails their panel's caption instead of "Thumbnail N of M".
JS = """
() => {
  const name = () => {
    const canvas = document.querySelector('#sketch-canvas canvas');
    const help = document.querySelector('#sketch-help');
    if (canvas) {
      const open = document.querySelector('#panel-selector input:checked');
      const panel = open ? open.closest('label').innerText.trim() : 'the panel';
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `Sketch canvas of ${panel}: draw with the brush, remove with the eraser`);
      if (help && help.id) canvas.setAttribute('aria-describedby', help.id);
    }
    // Gradio's empty-image boxes carry an aria-label, which a div may only have with a role.
    document.querySelectorAll('div.unpadded_box[aria-label]:not([role])')
      .forEach((box) => box.setAttribute('role', 'img'));
    // An image shown as a button (to enlarge it) is named after its block's label.
    document.querySelectorAll('.image-container button:not([aria-label])').forEach((button) => {
      const label = button.closest('.block')?.querySelector('[data-testid="block-label"]');
      button.setAttribute('aria-label', 'Enlarge: ' + (label ? label.innerText.trim() : 'image'));
    });
    document.querySelectorAll('#storyboard .thumbnail-item, #storyboard button').forEach((item) => {
      const caption = item.querySelector('.caption-label, figcaption, span');
      if (caption && caption.innerText.trim()) item.setAttribute('aria-label', 'Open ' + caption.innerText.trim());
    });
  };
  new MutationObserver(name).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      attributeFilter: ['checked']});
  name();

  // A picture chosen for the canvas (file dialog or drop) never reaches the editor: it decodes and
  // paints it at full size (a 6000 px photo froze the page for minutes) and silently drops a picture
  // it is still reading when a panel click's answer sets its value. Instead the picture is decoded
  // off the page's thread, reduced here and sent with the panel it was chosen on through the hidden
  // #chosen-picture button (see wire and Handlers.chosen_picture).
  const waiting = window.sketchstoryChosen = [];
  const dataUrl = (blob) => new Promise((done, fail) => {
    const reader = new FileReader();
    reader.onload = () => done(reader.result);
    reader.onerror = () => fail(reader.error);
    reader.readAsDataURL(blob);
  });
  const reduce = async (file) => {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
    const small = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * scale)),
                                      Math.max(1, Math.round(bitmap.height * scale)));
    const context = small.getContext('2d');
    context.imageSmoothingQuality = 'high';
    context.drawImage(bitmap, 0, 0, small.width, small.height);
    bitmap.close();
    return dataUrl(await small.convertToBlob({type: 'image/png'}));
  };
  const choose = async (file) => {
    const panel = [...document.querySelectorAll('#panel-selector input[type=radio]')].findIndex((r) => r.checked);
    let picture = null;
    try {
      picture = await reduce(file);
    } catch {  // not a picture the browser reads: the server may (else it says why), if it is not too big
      if (file.size <= MAX_BYTES) picture = await dataUrl(file);
    }
    waiting.push(JSON.stringify({panel, name: file.name, picture}));
    document.querySelector('#chosen-picture').click();
  };
  const take = (event, files) => {
    if (!files || !files.length) return false;
    event.stopImmediatePropagation();
    event.preventDefault();
    choose(files[0]);
    return true;
  };
  document.addEventListener('change', (event) => {
    if (event.target.matches?.('#sketch-canvas input[type=file]') && take(event, event.target.files)) {
      event.target.value = '';  // the same file can be chosen again
    }
  }, true);
  document.addEventListener('drop', (event) => {
    if (event.target.closest?.('#sketch-canvas')) take(event, event.dataTransfer?.files);
  }, true);
}
""".replace("LONG_SIDE", str(UPLOAD_LONG_SIDE)).replace("MAX_BYTES", str(MAX_UPLOAD_MB * 2**20))
# The hidden button's script hands the next waiting picture to Handlers.chosen_picture.
NEXT_CHOSEN = "(story, open, _) => [story, open, window.sketchstoryChosen?.shift() ?? '']"


def build_app(workspace: Workspace, renderer: Renderer) -> gr.Blocks:
    with gr.Blocks(title="sketchstory", analytics_enabled=False) as app:
        w = build_widgets(str(workspace.root))
        wire(app, w, Handlers(workspace, renderer, w))
    return app


def wire(app: gr.Blocks, w: Widgets, h: Handlers) -> None:
    edit: dict[str, Any] = {"concurrency_id": "edit", "concurrency_limit": 1, "show_progress": "hidden"}
    meta_in = [w.story, *w.meta]
    panel_out = [w.story, w.selector, w.prompt, w.caption, w.seed, w.editor, w.canny, w.panel_note, w.storyboard,
                 *w.cast]
    everything = [w.story, *w.meta, w.meta_note, *panel_out[1:], *w.settings, w.settings_note, w.status, w.results,
                  w.strip, w.regen_panel, w.download, w.s1_model, w.undo_btn, *w.references]

    app.load(h.load, None, everything, **edit)

    for meta_field in w.meta:
        meta_field.change(h.edit_meta, meta_in, [w.story, w.meta_note], trigger_mode="always_last", **edit)
    # Renamed, added or removed characters: the names to tick and to give pictures to follow.
    w.characters.blur(h.cast.refresh, [w.story, w.selector, w.ref_name], [*w.cast, *w.references], **edit)
    w.open_btn.click(h.open_path, w.path, everything, **edit)
    w.path.submit(h.open_path, w.path, everything, **edit)
    w.upload_btn.upload(h.upload_story, w.upload_btn, everything, **edit)
    w.save_btn.click(h.save_to, {w.path, *w.form, w.story}, [w.story], **edit)

    # A panel clicked while the last click is still being answered is opened after it ("once", Gradio's
    # default, would drop it: the radio would show one panel and the fields another).
    w.selector.input(h.select, [w.story, w.selector], panel_out, trigger_mode="always_last", **edit)
    w.storyboard.select(h.select_from_storyboard, w.story, panel_out, trigger_mode="always_last", **edit)
    for panel_field in (w.prompt, w.caption, w.seed):
        panel_field.change(h.edit_panel, [w.story, *w.panel_fields, w.panel_note], [w.story, w.panel_note],
                          trigger_mode="always_last", **edit)
        panel_field.blur(h.refresh_storyboard, w.story, w.storyboard, **edit)
    w.add_btn.click(h.add, [w.story, w.selector, w.new_prompt], [*panel_out, w.new_prompt], **edit)
    w.new_prompt.submit(h.add, [w.story, w.selector, w.new_prompt], [*panel_out, w.new_prompt], **edit)
    w.delete_btn.click(h.delete, [w.story, w.selector], [*panel_out, w.undo_btn], **edit)
    w.undo_btn.click(h.undo_delete, w.story, [*panel_out, w.undo_btn], **edit)
    w.left_btn.click(partial(h.move, delta=-1), [w.story, w.selector], panel_out, **edit)
    w.right_btn.click(partial(h.move, delta=1), [w.story, w.selector], panel_out, **edit)

    w.editor.change(h.draw, [w.story, w.selector, w.editor],
                    [w.story, w.canny, w.storyboard, w.panel_note, w.editor], **edit)
    w.editor.upload(h.upload_drawing, [w.story, w.selector, w.editor], panel_out, **edit)
    w.chosen_btn.click(h.chosen_picture, [w.story, w.selector, w.chosen],
                       [w.story, w.editor, w.canny, w.panel_note, w.storyboard], js=NEXT_CHOSEN,
                       trigger_mode="multiple", **edit)  # one event per picture, however fast they come
    sketch_in = [w.story, w.selector]
    w.flip_btn.click(partial(h.edit_sketch, op="flip", axis="horizontal"), sketch_in, panel_out, **edit)
    w.thicker_btn.click(partial(h.edit_sketch, op="thickness", pixels=1), sketch_in, panel_out, **edit)
    w.thinner_btn.click(partial(h.edit_sketch, op="thickness", pixels=-1), sketch_in, panel_out, **edit)
    w.remove_sketch_btn.click(h.remove_sketch, sketch_in, panel_out, **edit)

    wire_cast(w, h.cast, edit)

    # Stage 1 shares the render group: the two stages never run (or hold a model) at the same time.
    stage1: dict[str, Any] = {"concurrency_id": "render", "concurrency_limit": 1, "show_progress": "full",
                              "show_progress_on": w.s1_gallery}
    s1_in = [w.story, w.selector, w.s1_model, w.s1_count, w.s1_seed]
    s1_out = [w.s1_gallery, w.s1_paths, w.s1_seed, w.s1_note]
    w.s1_btn.click(h.make_candidates, s1_in, s1_out, **stage1)
    w.s1_new_btn.click(partial(h.make_candidates, new_seed=True), s1_in, s1_out, **stage1)
    w.s1_gallery.select(h.pick_sketch, [w.story, w.selector, w.s1_paths], panel_out, **edit)
    for trigger in (w.lib_btn.click, w.lib_query.submit):
        trigger(h.search_library, w.lib_query, [w.lib_gallery, w.lib_paths, w.lib_note], concurrency_id="library")
    w.lib_gallery.select(h.pick_sketch, [w.story, w.selector, w.lib_paths], panel_out, **edit)

    for setting in w.settings:
        setting.input(h.edit_settings, {w.story, w.selector, *w.settings}, [*panel_out, w.settings_note],
                    trigger_mode="always_last", **edit)

    render: dict[str, Any] = {"concurrency_id": "render", "concurrency_limit": 1, "show_progress": "minimal"}
    results_out = [w.status, w.results, w.strip, w.regen_panel, w.download]
    w.generate_btn.click(h.generate, {w.story, *w.form}, [w.story, *results_out], **render)
    w.regen_btn.click(h.regenerate, {w.story, w.regen_panel, *w.form}, [*panel_out, *results_out], **render)
    # Stop asks the render to end at its next step (finished panels are kept) rather than killing the job.
    w.stop_btn.click(h.stop, None, None, queue=False)
    w.results.select(h.pick_result, None, w.regen_panel, **edit)


def wire_cast(w: Widgets, h: CastHandlers, edit: dict[str, Any]) -> None:
    """The *Characters* tab, the panel's setting and the reference pictures (see ui.cast_handlers)."""
    # Placing the first character routes MAGA, which may take the model's MAGA settings for that: the form shows them.
    cast_out = [w.story, w.panel_note, *w.cast, *w.settings, w.settings_note]
    w.cast_members.input(h.members, [w.story, w.selector, w.cast_members], cast_out, trigger_mode="always_last",
                         **edit)
    w.cast_name.input(h.pick, [w.story, w.selector, w.cast_name], cast_out, **edit)
    w.cast_picture.select(h.click, [w.story, w.selector, w.cast_name, w.cast_corner], cast_out,
                          trigger_mode="always_last", **edit)
    for trigger in (w.cast_place_btn.click, w.cast_box.submit):
        trigger(h.place_typed, [w.story, w.selector, w.cast_name, w.cast_box], cast_out, **edit)
    w.cast_unbox_btn.click(h.unbox, [w.story, w.selector, w.cast_name], cast_out, **edit)
    w.setting.change(h.edit_setting, [w.story, w.selector, w.setting],
                     [w.story, w.panel_note, *w.settings, w.settings_note], trigger_mode="always_last", **edit)
    ref_out = [w.story, *w.references]
    w.ref_name.input(h.pick_reference, [w.story, w.ref_name], ref_out, **edit)
    w.ref_image.upload(h.upload_reference, [w.story, w.ref_name, w.ref_image], ref_out, **edit)
    w.ref_image.clear(h.clear_reference, [w.story, w.ref_name], ref_out, **edit)


def launch(app: gr.Blocks, workspace: Workspace, host: str = "127.0.0.1", port: int = 7860, *,
           block: bool = True) -> None:
    """Serve the page; ``block=False`` returns once it is up (tests)."""
    app.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, allowed_paths=[str(workspace.root)],
        show_error=True, ssr_mode=False, quiet=not block, css=CSS, js=JS, inbrowser=False,
        max_file_size=MAX_UPLOAD)


def main(host: str = "127.0.0.1", port: int = 7860, story: Path | None = None, work: Path = DEFAULT_WORK,
         device: str | None = None, library: Path | None = None) -> None:
    """``sketchstory ui``: open ``story`` (else the autosaved one) in ``work`` and serve the page until Ctrl-C."""
    workspace = Workspace(work, library)
    if story is not None:
        opened, notes = workspace.import_story(story)
        workspace.save(opened)
        for note in notes:
            print(f"warning: {note}")
    print(f"sketchstory: working in {workspace.root}; open http://{host}:{port} in a browser (Ctrl-C stops)")
    launch(build_app(workspace, Renderer(device, library)), workspace, host, port)
