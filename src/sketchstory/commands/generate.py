"""``sketchstory generate STORY -o OUT``: stage 2, a story's panels, strip and metadata."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchstory.commands.args import int_list
from sketchstory.commands.settings import add_settings_args, settings_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="stage 2: render a story's panels, strip and metadata")
    p.add_argument("story", type=Path, help="story file (JSON)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="keep finished panels whose inputs did not change")
    p.add_argument("--force", action="store_true",
                   help="write into an output folder that holds files sketchstory did not write")
    p.add_argument("--only", type=int_list, metavar="I,J", help="regenerate only these panels (0-based)")
    p.add_argument("--keep-memory", action="store_true",
                   help="save MAGA memory per panel so later --only/--resume runs need not recompute it")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto (default): fp16 on CUDA; on the CPU bf16 for SD1.5-sized models where the CPU has "
                        "native bf16 (about 3x faster), else fp32")
    p.add_argument("--offload", action="store_true", help="CUDA: keep models in CPU memory until used (less VRAM)")
    p.add_argument("--library", type=Path,
                   help="sketch library for library:ID sketches (default: $SKETCHSTORY_LIBRARY or the user library)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_settings_args(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from sketchstory.pipeline.runner import RunOptions, generate, strip_pages
    from sketchstory.story import load_story

    story = load_story(args.story).with_settings(settings_overrides(args), "command-line settings")
    options = RunOptions(resume=args.resume, only=frozenset(args.only) if args.only else None,
                         keep_memory=args.keep_memory, device=args.device, dtype=args.dtype, offload=args.offload,
                         library=args.library, progress=not args.quiet, force=args.force)
    report = generate(story, args.story.parent, args.out, options)
    print(f"{len(report.rendered)} panel(s) rendered, {len(report.reused)} kept, "
          f"{len(report.recomputed)} recomputed for memory, in {report.seconds:.1f} s -> {args.out}")
    if report.missing:
        print(f"panel(s) {','.join(map(str, report.missing))} not rendered yet (not in --only): "
              "run without --only, or with --resume, to render them")
    if pages := strip_pages(args.out):
        more = f" (continued in {', '.join(p.name for p in pages[1:])})" if pages[1:] else ""
        print(f"comic strip: {pages[0]}{more}")
    return 0
