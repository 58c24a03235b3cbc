"""``sketchstory batch``: render many stories, each one task on a worker (Ray, or this process).

    sketchstory batch STORIES/ -o OUT                 a folder of story folders (each with story.json)
    sketchstory batch stories.jsonl -o OUT --ray-address auto   one story per line, on a Ray cluster

Usage, the JSONL format and running on a cluster are in docs/dist.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sketchstory.errors import Terminated, interrupted_code


def register(subparsers: Any) -> None:
    """Add ``batch`` to the ``sketchstory`` subparsers."""
    from sketchstory.commands.args import bounded
    from sketchstory.commands.settings import add_settings_args
    from sketchstory.commands.workers import add_cluster_args

    p = subparsers.add_parser(
        "batch", help="render many stories (a folder or JSONL) on Ray workers: retried, resumable, reported",
        description=__doc__.split("\n")[0],
        epilog="Exit codes: 0 every story done or skipped; else the failed stories' code as in `generate` "
               "(2 input, 3 model, 4 output, 5 memory), or 1 if they differ. OUT/batch.json lists every story.")
    p.add_argument("input", type=Path, help="a folder of story folders (each with story.json), or a .jsonl file")
    p.add_argument("-o", "--out", type=Path, required=True,
                   help="output folder: OUT/NAME/ per story (generate's layout) and OUT/batch.json")
    p.add_argument("--force", action="store_true",
                   help="write into an output folder that holds files sketchstory did not write")
    p.add_argument("--allow-folders-outside", action="store_true",
                   help="JSONL: let a line's \"folder\" lie outside the JSONL file's folder")
    p.add_argument("--retries", type=bounded(int, 0, 10), default=2, metavar="N", help="tries again a failed story up to N times (default 2)")
    p.add_argument("--library", type=Path, help="sketch library for library:ID sketches (on shared storage)")
    p.add_argument("--keep-memory", action="store_true",
                   help="save each panel's MAGA memory, for later --only/--resume runs of a story")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_cluster_args(p, "story")
    add_settings_args(p)
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from sketchstory.commands.settings import settings_overrides
    from sketchstory.batch.stories import run_batch
    from sketchstory.commands.workers import cluster_from_args
    from sketchstory.batch.inputs import REPORT_NAME, read_tasks, with_story

    cluster = cluster_from_args(args)
    changes = settings_overrides(args)
    tasks = with_story(read_tasks(args.input, allow_outside=args.allow_folders_outside), lambda story: story.with_settings(changes, "command-line settings"))
    try:
        report = run_batch(tasks, args.out, cluster, retries=args.retries, library=args.library,
                           keep_memory=args.keep_memory, progress=not args.quiet, force=args.force,
                           inputs=[args.input] if args.input.is_dir() else [])
    except KeyboardInterrupt as e:
        print(f"{'terminated (SIGTERM)' if isinstance(e, Terminated) else 'interrupted'}: finished stories and panels are kept ({args.out / REPORT_NAME} lists the finished "
              "stories); run the same command again to continue", file=sys.stderr)
        return interrupted_code(e)
    for story in report.stories:
        if story.status == "failed":
            tries = f" after {story.attempts} attempt(s)" if story.attempts else ""
            print(f"failed: {story.name} ({story.source}){tries}: {story.error}", file=sys.stderr)
    print(f"{report.count('done')} done, {report.count('skipped')} already finished, {report.count('failed')} "
          f"failed, of {len(report.stories)} stories in {report.seconds:.1f} s on {report.workers} "
          f"-> {report.out} (report: {report.out / REPORT_NAME})")
    return report.exit_code
