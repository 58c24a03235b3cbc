"""sketchstory story ACTION STORY ...: edit a story's panels, sketches and characters from scripts.

Each action loads the story, applies one operation of sketchstory.panels or sketchstory.cast and saves the story in
place, holding the story's lock (a concurrent edit is waited for and kept, never overwritten). Sketch edits write a new file beside the old one (the original is never overwritten).
Panel numbers are 0-based.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from sketchstory.commands.args import bounded
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic is imported when an action runs, so `sketchstory --help` stays quick
    from sketchstory.story import Placement, Story

Action = Callable[["Story", Path, argparse.Namespace], "Story"]


def _panels() -> ModuleType:
    """:mod:`sketchstory.panels`, imported when an action runs, so ``sketchstory --help`` stays quick."""
    import sketchstory.panels

    return sketchstory.panels


def _box(text: str) -> tuple[int, int, int, int]:
    try:
        left, top, right, bottom = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LEFT,TOP,RIGHT,BOTTOM in pixels, e.g. 0,0,32,16") from None
    return left, top, right, bottom


def _fraction_box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give X0,Y0,X1,Y1 as fractions of the panel, "
                                         "e.g. 0.05,0.2,0.5,0.95") from None
    return x0, y0, x1, y1


def _cast() -> ModuleType:
    """:mod:`sketchstory.cast`, imported when an action runs."""
    import sketchstory.cast

    return sketchstory.cast


def _order(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the old panel numbers in their new order, e.g. 2,0,1") from None


def _candidate(text: str) -> int | Path:
    return int(text) if text.isdigit() else Path(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("story", help="edit a story: choose/import/edit sketches, insert/delete/reorder "
                                               "panels, characters and where they stand",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, run: Action, panel: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("story", type=Path, help="story file (JSON); updated in place")
        if panel:
            p.add_argument("panel", type=int, help="panel number (0-based)")
        p.set_defaults(func=lambda args: _apply(args, run))
        return p

    p = sub.add_parser("list", help="show the panels: prompt, seed, sketch")
    p.add_argument("story", type=Path)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import", help="make stories of a benchmark's: ViStoryBench or ConsiStory+ (docs/benchmarks.md)",
                       description="Turn a benchmark story into a story folder: prompts, captions, characters and "
                                   "their reference pictures; no sketches (stage 1 or the library supplies them).")
    p.add_argument("file", type=Path, help="ViStoryBench: NN/story.json, its folder NN/, or the dataset folder; "
                                           "ConsiStory+: the YAML file")
    p.add_argument("--format", required=True, choices=("vistorybench", "consistory"), dest="fmt",
                   help="the benchmark the file comes from")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="the story folder (one ViStoryBench story), else a folder of story folders")
    p.add_argument("--lang", choices=("en", "ch"), default="en", help="ViStoryBench's language (default en)")
    p.set_defaults(func=cmd_import)

    p = action("import-sketch", "make a drawing (photo, scan, PNG) the panel's sketch, at the story's size",
               lambda s, d, a: _panels().import_sketch(s, d, a.panel, a.image))
    p.add_argument("image", type=Path, help="the drawing")
    p = action("choose", "use another stage-1 candidate (its number) or a sketch file as the panel's sketch",
               lambda s, d, a: _panels().choose_candidate(s, d, a.panel, a.candidate))
    p.add_argument("candidate", type=_candidate, help="candidate number K (cand_KK.png), or a file")
    p = action("flip", "mirror the panel's sketch left-right (or upside down)",
               lambda s, d, a: _panels().edit_sketch(s, d, a.panel, "flip", axis=a.axis))
    p.add_argument("--vertical", dest="axis", action="store_const", const="vertical", default="horizontal",
                   help="flip upside down instead")
    p = action("move", "move and/or scale the drawing inside the frame",
               lambda s, d, a: _panels().edit_sketch(s, d, a.panel, "move", dx=a.dx, dy=a.dy, scale=a.scale))
    p.add_argument("--dx", type=bounded(int, -4096, 4096), default=0, help="pixels to the right (negative: left)")
    p.add_argument("--dy", type=bounded(int, -4096, 4096), default=0, help="pixels down (negative: up)")
    p.add_argument("--scale", type=bounded(float, 1 / 16, 16), default=1.0,
                   help="size factor about the drawing's centre, 0.0625..16")
    p = action("crop", "keep a box of the sketch and scale it up to fill the frame",
               lambda s, d, a: _panels().edit_sketch(s, d, a.panel, "crop", box=a.box))
    p.add_argument("box", type=_box, help="LEFT,TOP,RIGHT,BOTTOM in pixels")
    p = action("erase", "paint a box of the sketch white",
               lambda s, d, a: _panels().edit_sketch(s, d, a.panel, "erase", box=a.box))
    p.add_argument("box", type=_box, help="LEFT,TOP,RIGHT,BOTTOM in pixels")
    p = action("thicken", "make lines thicker (negative: thinner) by PIXELS on each side",
               lambda s, d, a: _panels().edit_sketch(s, d, a.panel, "thickness", pixels=a.pixels))
    p.add_argument("pixels", type=bounded(int, -64, 64), help="e.g. 1 (thicker) or -1 (thinner); -64..64")
    p = action("insert", "insert a new panel before position INDEX (the panel count appends)", _insert, panel=False)
    p.add_argument("index", type=int, help="position of the new panel (0-based)")
    p.add_argument("prompt", help="what the panel shows")
    p.add_argument("--caption", help="caption under the panel")
    p.add_argument("--seed", type=int, help="its seed (default: one no other panel uses)")
    p.add_argument("--sketch", type=Path, help="a drawing to import as its sketch")
    action("delete", "remove a panel (its sketch file stays on disk)",
           lambda s, d, a: _panels().delete_panel(s, a.panel))
    p = action("move-panel", "move a panel to another position, with its sketch and seed",
               lambda s, d, a: _panels().move_panel(s, a.panel, a.to))
    p.add_argument("to", type=int, help="its new position (0-based)")
    p = action("reorder", "put all panels in a new order, with their sketches and seeds",
               lambda s, d, a: _panels().reorder_panels(s, a.order), panel=False)
    p.add_argument("order", type=_order, help="old panel numbers in the new order, e.g. 2,0,1")
    p = action("character", "add a character, or change its description or reference picture",
               lambda s, d, a: _cast().set_character(s, d, a.name, description=a.description, reference=a.reference,
                                                     drop_reference=a.no_reference), panel=False)
    p.add_argument("name", help="the character's name, as prompts call it")
    p.add_argument("--description", help="what it looks like; added to the prompt of every panel it is in")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", type=Path, help="a picture of it (copied into the story folder's refs/)")
    ref.add_argument("--no-reference", action="store_true", help="forget its reference picture")
    p = action("remove-character", "remove a character from the story and its panels",
               lambda s, d, a: _cast().remove_character(s, a.name), panel=False)
    p.add_argument("name")
    p = action("place", "put a character in the panel: in a box, in a region mask, or (neither) on the sketch's "
               "subject; MAGA then shares memory per character",
               lambda s, d, a: _cast().place(s, d, a.panel, a.name, box=a.box, mask=a.mask))
    p.add_argument("name", help="a character of the story")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--box", type=_fraction_box, help="X0,Y0,X1,Y1 as fractions of the panel (0..1), "
                                                         "e.g. 0.05,0.2,0.5,0.95")
    where.add_argument("--mask", type=Path, help="a picture of the panel, white where the character is "
                                                 "(copied into the story folder's masks/)")
    p = action("unplace", "take a character out of the panel",
               lambda s, d, a: _cast().unplace(s, a.panel, a.name))
    p.add_argument("name")
    p = action("setting", "name where the panel takes place (none given: clear it); backgrounds share MAGA memory "
               "only within one setting", lambda s, d, a: _cast().set_setting(s, a.panel, a.setting))
    p.add_argument("setting", nargs="?", help="e.g. forest")


def _insert(story: Story, story_dir: Path, args: argparse.Namespace) -> Story:
    from sketchstory.story import Panel

    story = _panels().insert_panel(story, args.index, Panel(prompt=args.prompt, caption=args.caption, seed=args.seed))
    return _panels().import_sketch(story, story_dir, args.index, args.sketch) if args.sketch else story


def _apply(args: argparse.Namespace, run: Action) -> int:
    from sketchstory.story import edit_story

    story = edit_story(args.story, lambda story: run(story, args.story.parent, args))
    _print_panels(story)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from sketchstory.benchmarks import read_consistory, read_vistorybench, write_story_folder

    stories = read_vistorybench(args.file, args.lang) if args.fmt == "vistorybench" else read_consistory(args.file)
    # One ViStoryBench story (its story.json or folder) goes to -o itself; a dataset or a YAML, into -o.
    single = args.fmt == "vistorybench" and (args.file.is_file() or (args.file / "story.json").is_file())
    if not single and args.out.exists() and any(args.out.iterdir()):
        raise ValueError(f"{args.out} is not empty: give a new folder for the {len(stories)} story folders")
    for imported in stories:
        written = write_story_folder(imported, args.out if single else args.out / imported.name)
        story = imported.story
        refs = sum(c.reference is not None for c in story.characters)
        print(f"{written}: {len(story.panels)} panels, {len(story.characters)} characters "
              f"({refs} with a reference picture)")
        for note in imported.notes:
            print(f"  note: {note}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from sketchstory.story import load_story

    _print_panels(load_story(args.story, check_files=False))
    return 0


def _print_panels(story: Story) -> None:
    for i, panel in enumerate(story.panels):
        print(f"{i:3d}  seed {story.panel_seed(i):<20} sketch {panel.sketch or '-':<36} {panel.prompt}")
        if story.version >= 2:  # where the characters stand steers MAGA: show it
            cast = "; ".join(_where(c) for c in story.placements(i))
            setting = f"  (setting: {panel.setting})" if panel.setting else ""
            if cast or setting:
                print(f"     {cast}{setting}")


def _where(placement: Placement) -> str:
    box, mask = placement.box, placement.mask
    where = f"box {','.join(f'{v:g}' for v in box)}" if box else f"mask {mask}" if mask else "on the sketch's subject"
    return f"{placement.name}: {where}"
