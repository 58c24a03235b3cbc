"""``sketchstory check STORY``: validate a story file and its sketches without loading a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check", help="validate a story file and its sketches")
    p.add_argument("story", type=Path)
    p.add_argument("--library", type=Path, help="sketch library for library:ID sketches")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from sketchstory.cast import unplaced_together
    from sketchstory.pipeline.conditions import read_masks, read_references, read_sketches
    from sketchstory.story import load_story
    from sketchstory.tokenizer import clip_tokenizer, long_prompts

    story = load_story(args.story)
    read_sketches(story, args.story.parent, args.library)
    read_masks(story, args.story.parent)
    read_references(story, args.story.parent)
    # every SD1.5 model reads CLIP's 77 tokens
    for warning in [*long_prompts(story, clip_tokenizer()), *unplaced_together(story)]:
        print(f"warning: {warning}", file=sys.stderr)
    placed = sum(c.placed for p in story.panels for c in p.characters or ())
    cast = f", {len(story.characters)} character(s), {placed} placed in panels" if story.characters else ""
    print(f"{args.story}: ok, {len(story.panels)} panel(s){cast}, model {story.settings.model}")
    return 0
