"""``sketchstory library``: build, import, list, search, show and export sketch libraries.

Every subcommand takes ``--library DIR`` (default: ``$SKETCHSTORY_LIBRARY``, else
``~/.local/share/sketchstory/library``), the same library that ``generate`` reads ``library:ID``
sketches from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sketchstory.commands.args import bounded
from sketchstory.errors import EXIT_INPUT, CliError, Terminated, interrupted_code

if TYPE_CHECKING:
    from sketchstory.library import Filters, Library



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``library`` and its subcommands to the ``sketchstory`` subparsers."""
    from sketchstory.commands.workers import add_cluster_args

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", type=Path, metavar="DIR",
                        help="library folder (default: $SKETCHSTORY_LIBRARY, else ~/.local/share/sketchstory/library)")
    select = argparse.ArgumentParser(add_help=False)
    select.add_argument("--group", choices=["story", "sundry", "user"], help="only this group")
    select.add_argument("--category", help="only this sundry or import category")
    select.add_argument("--story", help="only this story's scenes")

    lib = subparsers.add_parser("library", help="sketch libraries: build, import, list, search, show, export",
                                description=__doc__.split("\n")[0])
    sub = lib.add_subparsers(dest="library_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("build", parents=[common], help="make sketches for a prompts file with stage 1 (resumable)")
    p.add_argument("prompts", type=Path, help="prompts file (JSON, see docs/library.md)")
    p.add_argument("--model", default="demo", help="stage-1 text-to-image model (default: demo)")
    p.add_argument("--candidates", type=bounded(int, 1, 1000), metavar="K",
                   help="candidates per scene, 1..1000 (default: the file's)")
    p.add_argument("--sundry-candidates", type=bounded(int, 1, 1000), metavar="K",
                   help="candidates per sundry object, 1..1000")
    p.add_argument("--side", type=bounded(int, 64, 4096), default=512,
                   help="longest side of stored sketches, for a new library (64..4096)")
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--retries", type=bounded(int, 0, 10), default=2, metavar="N",
                   help="with workers: tries a failed scene or object again up to N times (0..10, default 2)")
    add_cluster_args(p, "worker", ray_by_default=False)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("import", parents=[common], help="add a folder of your own drawings, normalised")
    p.add_argument("folder", type=Path)
    p.add_argument("--tags", default="", help="comma-separated tags for every drawing")
    p.add_argument("--category", help="category for every drawing (default: its subfolder)")
    p.add_argument("--side", type=bounded(int, 64, 4096), default=512,
                   help="longest side of stored sketches, for a new library (64..4096)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("list", parents=[common, select], help="list sketches, or count them by story/category")
    p.add_argument("--limit", type=bounded(int, 1, 1_000_000), default=50)
    p.add_argument("--offset", type=bounded(int, 0, 10**12), default=0)
    p.add_argument("--summary", action="store_true", help="counts per group and story/category instead")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("search", parents=[common, select], help="full-text search: prompts, tags, categories, stories")
    p.add_argument("words", nargs="+", help='words (all must match, else any), "quoted phrases" allowed')
    p.add_argument("--limit", type=bounded(int, 1, 1_000_000), default=20)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("show", parents=[common], help="one sketch's metadata and file")
    p.add_argument("id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", parents=[common, select], help="copy a subset to a new library folder or .zip")
    p.add_argument("dest", type=Path, help="folder, or a file ending in .zip")
    p.add_argument("--query", help="only sketches matching these search words")
    p.add_argument("--ids", help="only these ids, comma-separated")
    p.set_defaults(func=cmd_export)


def _library(args: argparse.Namespace) -> Library:
    # Imports stay inside the commands so that `sketchstory --help` does not load the library code.
    from sketchstory.library import Library, library_path

    return Library.open(library_path(args.library))


def _filters(args: argparse.Namespace, ids: tuple[str, ...] = ()) -> Filters:
    from sketchstory.library import Filters

    return Filters(args.group, args.category, args.story, ids)


def cmd_build(args: argparse.Namespace) -> int:
    from sketchstory.library import Library, library_path, load_prompts
    from sketchstory.pipeline.library_build import build_library

    prompts = load_prompts(args.prompts)
    root = library_path(args.library)
    distributed = args.ray_address is not None or args.workers is not None
    if distributed and args.device:
        raise CliError("--device picks this process's device; Ray workers use the GPUs they ask for "
                       "(--gpus-per-worker) or their CPUs")
    with Library.writer(root, side=args.side) as library:
        try:
            if distributed:
                from sketchstory.commands.workers import cluster_from_args
                from sketchstory.batch.library import build_library_distributed

                report = build_library_distributed(library, prompts, args.model, cluster_from_args(args),
                                                   candidates=args.candidates, sundry_candidates=args.sundry_candidates,
                                                   retries=args.retries, progress=not args.quiet)
            else:
                report = build_library(library, prompts, args.model, candidates=args.candidates,
                                       sundry_candidates=args.sundry_candidates, device=args.device,
                                       progress=not args.quiet)
        except KeyboardInterrupt as e:
            print(f"{'terminated (SIGTERM)' if isinstance(e, Terminated) else 'interrupted'}: the {library.index.count()} sketch(es) in {root} are kept; run the same command "
                  "again to continue", file=sys.stderr)
            return interrupted_code(e)
    print(f"{report.added} sketch(es) added, {report.duplicates} duplicate(s) skipped, {report.already} already "
          f"built, {len(report.failed)} unusable, in {report.seconds:.1f} s (model loading {report.load_seconds:.1f} s)"
          f" -> {root}")
    for key, reason in report.failed:
        print(f"unusable: {key}: {reason}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sketchstory.library import Library, import_folder, library_path, picture_files

    root = library_path(args.library)
    tags = tuple(t.strip() for t in args.tags.split(",") if t.strip())
    total = len(picture_files(args.folder))
    with Library.writer(root, side=args.side) as library, tqdm(total=total, unit="file", disable=None) as bar:
        report = import_folder(library, args.folder, tags=tags, category=args.category,
                               on_file=lambda _: bar.update())
    for path, entry in report.duplicates:
        print(f"already in the library: {path} (as {entry.id})")
    for path, reason in report.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"{len(report.added)} drawing(s) added, {len(report.duplicates)} already there, "
          f"{len(report.failed)} unusable -> {root}")
    return EXIT_INPUT if report.failed else 0  # some files could not be used


def cmd_list(args: argparse.Namespace) -> int:
    with _library(args) as library:
        if args.summary:
            for group, name, count in library.index.summary():
                print(f"{group:7} {count:6}  {name or ''}")
            return 0
        filters = _filters(args)
        entries = library.index.entries(filters, args.limit, args.offset)
        for entry in entries:
            print(f"{entry.id}  {entry.meta.group:7} {entry.label[:40]:40}  {entry.meta.prompt}")
        total = library.index.count(filters)
        print(f"-- {args.offset + 1 if entries else 0}-{args.offset + len(entries)} of {total}", file=sys.stderr)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _library(args) as library:
        hits = library.index.search(" ".join(args.words), _filters(args), args.limit)
        for hit in hits:
            e = hit.entry
            print(f"{e.id}  {-hit.score:6.2f}  {e.meta.group:7} {e.label[:40]:40}  {e.meta.prompt}")
        if not hits:
            print("no sketch matches; try fewer or other words", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _library(args) as library:
        entry = library.get(args.id)
        m = entry.meta
        fields = {"id": entry.id, "reference": f"library:{entry.id}", "file": library.path(entry),
                  "size": f"{entry.width}x{entry.height}", "group": m.group, "prompt": m.prompt,
                  "tags": ", ".join(m.tags), "category": m.category, "story": m.story, "scene": m.scene,
                  "candidate": m.candidate, "seed": m.seed, "source": m.source, "sha256": entry.hash}
        for key, value in fields.items():
            if value not in (None, ""):
                print(f"{key:10} {value}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sketchstory.library import export

    ids = tuple(i.strip().lower() for i in (args.ids or "").split(",") if i.strip())
    with _library(args) as library:
        filters = _filters(args, ids)
        if args.query:
            entries = [h.entry for h in library.index.search(args.query, filters, limit=None)]
        else:
            entries = library.index.entries(filters)
        added = export(library, entries, args.dest)
    print(f"{len(entries)} sketch(es) selected, {added} written -> {args.dest}")
    return 0
