"""sketchstory sketch STORY: stage 1, K sketch candidates per panel, the first written back.

Candidates go to OUT/panel_NN/cand_KK.png (OUT defaults to candidates/ beside the story, so the
story can refer to them directly); a rerun writes panel_NN-2/ and so on, never over earlier
candidates. The story file is updated after every panel, so an interrupted run keeps what it
finished; each update re-reads the file under its lock, so edits made meanwhile (a panel inserted,
another sketch chosen) are kept, and a panel edited meanwhile keeps its new sketch. Panels that already have a sketch are left alone unless --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchstory.commands.args import bounded, int_list, size


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sketch", help="stage 1: generate sketch candidates for the panels and write the first into the story",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("story", type=Path, help="story file (JSON); updated in place")
    p.add_argument("-o", "--out", type=Path, help="candidates folder (default: candidates/ beside the story)")
    p.add_argument("-k", "--candidates", type=bounded(int, 1, 64), default=4, help="candidates per panel, 1..64 (default 4)")
    p.add_argument("--model", help="sdxl (thesis), sd15, demo, tiny, a hub id, a local folder or a .safetensors "
                                   "file (default: the story's model if demo/tiny, else sdxl)")
    p.add_argument("--panels", type=int_list, metavar="I,J", help="only these panels (0-based)")
    p.add_argument("--overwrite", action="store_true", help="also replace panels that already have a sketch")
    p.add_argument("--steps", type=bounded(int, 1, 1000), help="denoising steps, 1..1000 (default: the model's)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the model's)")
    p.add_argument("--template", help="prompt template with {prompt}, e.g. '{prompt}, ink line art'")
    p.add_argument("--negative", help="negative prompt (default: the model's line-art negative prompt)")
    p.add_argument("--size", type=size, metavar="WxH", help="generation size (default: the model's native "
                                                              "area in the story's aspect ratio)")
    p.add_argument("--lines", default="xdog", metavar="METHOD",
                   help="line extraction: xdog (default; clean, robust to noise) or adaptive (keeps fine hatching)")
    p.add_argument("--keep-pictures", action="store_true", help="also save each raw generated picture")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sketch)


def cmd_sketch(args: argparse.Namespace) -> int:
    from sketchstory.lineart import METHODS
    from sketchstory.models import default_sketch_model
    from sketchstory.panels import choose_candidate
    from sketchstory.pipeline.stage1 import (
        Candidate,
        SketchOptions,
        candidate_folder,
        default_choice,
        sketch_story,
    )
    from sketchstory.story import Story, StoryError, edit_story, load_story

    if args.lines not in METHODS:
        raise ValueError(f"--lines {args.lines}: use one of {', '.join(METHODS)}")
    story = load_story(args.story, check_files=False)
    story_dir = args.story.parent
    out = args.out if args.out is not None else story_dir / "candidates"
    n = len(story.panels)
    wanted = args.panels if args.panels is not None else list(range(n))
    if bad := [i for i in wanted if not 0 <= i < n]:
        raise StoryError([f"--panels {bad}: the story has panels 0..{n - 1}"], str(args.story))
    todo = [i for i in wanted if args.overwrite or story.panels[i].sketch is None]
    if skipped := [i for i in wanted if i not in todo]:
        print(f"panel(s) {','.join(map(str, skipped))} already have a sketch; kept (use --overwrite to replace)")
    if not todo:
        return 0
    folders = {i: candidate_folder(out, i) for i in todo}
    model = args.model or default_sketch_model(story.settings.model)
    options = SketchOptions(candidates=args.candidates, steps=args.steps, guidance=args.guidance,
                            template=args.template, negative=args.negative, size=args.size, method=args.lines,
                            keep_pictures=args.keep_pictures, progress=not args.quiet, device=args.device)

    def write_back(i: int, candidates: list[Candidate]) -> None:
        choice = default_choice(candidates)
        if choice is None:
            print(f"panel {i}: every candidate came out blank; the panel keeps its sketch (try more --candidates, "
                  "another --template, or draw one and `sketchstory story import-sketch`)")
            return
        where: list[int] = []

        def take(current: Story) -> Story:  # the story as it is on disk now, maybe edited meanwhile
            same = [j for j, p in enumerate(current.panels)
                    if (p.prompt, p.sketch) == (story.panels[i].prompt, story.panels[i].sketch)]
            if len(same) != 1:
                return current
            where.append(same[0])
            return choose_candidate(current, story_dir, same[0], choice.path)

        saved = edit_story(args.story, take)
        if not where:
            print(f"panel {i}: {len(candidates)} candidate(s) in {folders[i]}; the panel was changed in the story "
                  "meanwhile, so it keeps what it has (choose one with `sketchstory story choose STORY PANEL FILE`)")
            return
        moved = f" (now panel {where[0]})" if where[0] != i else ""
        print(f"panel {i}{moved}: {len(candidates)} candidate(s) in {folders[i]}; using {saved.panels[where[0]].sketch}")

    sketch_story(story, folders, model, options, on_panel=write_back)
    print(f"story updated: {args.story} (pick another candidate with `sketchstory story choose STORY PANEL K`)")
    return 0
