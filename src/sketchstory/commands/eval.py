"""``sketchstory eval``: score runs, render baselines and ablation grids, import other systems' outputs.

    sketchstory eval RUN_DIR... [-o REPORT_DIR]        metrics of runs (ours, baselines, imports)
    sketchstory eval baselines STORIES... -o OUT       text-only, controlnet, ours-thesis, ours-default
    sketchstory eval ablation STORY -o OUT             the (start_layer, start_step) grid, thesis Fig 4.3
    sketchstory eval import PICTURES STORY -o RUN_DIR  another system's pictures as a run folder

The protocol is in docs/eval.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sketchstory.commands.args import SizeAction
from sketchstory.commands.settings import settings_overrides

ACTIONS = ("baselines", "ablation", "import")


def register(subparsers: Any) -> None:
    """Add ``eval`` to the ``sketchstory`` subparsers.

    ``eval RUN_DIR...`` and ``eval ACTION ...`` share one entry, so the rest of the command line
    is handed whole (options and ``--help`` included: no prefix character is ``-``) to the
    parser of its form in ``run``; argparse cannot mix sub-commands with a list of folders.
    """
    p = subparsers.add_parser("eval", help="evaluate runs; baselines, ablation grid, import (see eval --help)",
                              prefix_chars="+", add_help=False)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def metrics_parser() -> argparse.ArgumentParser:
    from sketchstory.eval.learned import CLIP_DEFAULT, DINO_DEFAULT

    p = argparse.ArgumentParser(prog="sketchstory eval", description="metrics of run folders; writes "
                                "report.json, report.md, metrics.png, time_vs_panels.png", epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="[SYSTEM=]RUN_DIR",
                   help="a run folder, a folder of runs (one system), or a folder of system folders")
    p.add_argument("-o", "--out", type=Path, default=Path("out/eval"), help="report folder (default out/eval)")
    p.add_argument("--clip", default=CLIP_DEFAULT, help=f"CLIP model: hub id or folder (default {CLIP_DEFAULT})")
    p.add_argument("--dino", default=DINO_DEFAULT, help=f"DINO model: hub id or folder (default {DINO_DEFAULT})")
    p.add_argument("--no-clip", action="store_true", help="skip CLIP-T and CLIP-I")
    p.add_argument("--no-dino", action="store_true", help="skip DINO similarity")
    p.add_argument("--reference", type=Path, help="folder of pictures whose mean image PSNR is measured against")
    p.add_argument("--remove-background", action="store_true",
                   help="CLIP-I and DINO on the sketched subject only (background painted white)")
    p.add_argument("--tolerance", type=float, help="sketch edge match distance in px (default 1%% of the diagonal)")
    p.add_argument("--cache", type=Path, help="cache folder for reference mean images")
    p.add_argument("--device", default="cpu", help="device for the evaluation models (default cpu)")
    return p


def generation_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"sketchstory eval {prog}", description=description)
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--model", help="override the stories' model (registry name, hub id, folder)")
    p.add_argument("--controlnet", help="override the stories' ControlNet")
    p.add_argument("--size", type=int, action=SizeAction, help="override width and height")
    p.add_argument("--steps", type=int, help="override the number of denoising steps")
    p.add_argument("--resume", action="store_true", help="keep finished panels whose inputs did not change")
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def baselines_parser() -> argparse.ArgumentParser:
    from sketchstory.eval.baselines import SYSTEMS

    p = generation_parser("baselines", "render stories with each system into OUT/SYSTEM/STORY")
    p.add_argument("stories", nargs="+", type=Path, help="story files, story folders, or folders of story folders")
    p.add_argument("--systems", type=_csv, default=list(SYSTEMS), help=f"comma-separated (default {','.join(SYSTEMS)})")
    return p


def ablation_parser() -> argparse.ArgumentParser:
    from sketchstory.eval.ablation import DEFAULT_LAYERS, DEFAULT_STEPS

    p = generation_parser("ablation", "the (start_layer, start_step) grid of thesis Fig 4.3 for one story")
    p.add_argument("story", type=Path, help="story file or folder with story.json")
    p.add_argument("--layers", type=_csv, default=[str(x) for x in DEFAULT_LAYERS],
                   help=f"start layers, columns (default {','.join(map(str, DEFAULT_LAYERS))})")
    p.add_argument("--start-steps", type=_csv, default=DEFAULT_STEPS,
                   help=f"start steps, rows: indices or a/b (default {','.join(DEFAULT_STEPS)})")
    return p


def import_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sketchstory eval import",
                                description="make a run folder from another system's pictures of a story")
    p.add_argument("pictures", type=Path, help="folder with one picture per panel, names in panel order")
    p.add_argument("story", type=Path, help="the story file they were made from (prompts, sketches)")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--system", help="system name recorded in run.json (default: the pictures folder's name)")
    p.add_argument("--seconds", type=float, help="the system's generation time for the story, if known")
    p.add_argument("--peak-bytes", type=int, help="the system's peak GPU memory in bytes, if known")
    return p


def _run_options(args: argparse.Namespace):  # -> RunOptions; imports stay lazy so `--help` is fast
    from sketchstory.pipeline.runner import RunOptions

    return RunOptions(resume=args.resume, device=args.device, progress=not args.quiet)


def _story_file(path: Path) -> Path:
    return path / "story.json" if path.is_dir() else path


def cmd_metrics(args: argparse.Namespace) -> int:
    from sketchstory.eval.evaluate import EvalOptions, evaluate
    from sketchstory.eval.report import write_report
    from sketchstory.eval.runs import discover

    options = EvalOptions(clip=None if args.no_clip else args.clip, dino=None if args.no_dino else args.dino,
                          reference=args.reference, remove_background=args.remove_background,
                          tolerance=args.tolerance, device=args.device, cache_dir=args.cache)
    doc = evaluate(discover(args.runs), options)
    for path in write_report(doc, args.out):
        print(f"written: {path}")
    for key, model in doc["models"].items():
        if model["status"] != "ok":
            print(f"{key}: {model['status']}: {model.get('note', '')}")
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from sketchstory.eval.baselines import run_baselines

    runs = run_baselines(args.stories, args.out, args.systems, settings_overrides(args), _run_options(args),
                         on_run=None if args.quiet else lambda system, story: print(f"{system}: {story}", flush=True))
    print(f"{len(runs)} run(s) -> {args.out}; score them with: sketchstory eval {args.out} -o REPORT_DIR")
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from sketchstory.eval.ablation import run_ablation

    try:
        layers = [int(x) for x in args.layers]
    except ValueError:
        raise ValueError(f"--layers {','.join(args.layers)}: give layer numbers 0..16, like 0,4,8,12") from None
    grid = run_ablation(_story_file(args.story), args.out, layers, args.start_steps, settings_overrides(args),
                        _run_options(args), on_cell=None if args.quiet else lambda c: print(c, flush=True))
    print(f"ablation grid: {grid}; score the cells with: sketchstory eval {args.out / 'cells'} -o REPORT_DIR")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from sketchstory.eval.runs import import_outputs

    run = import_outputs(args.pictures, _story_file(args.story), args.out, args.system or args.pictures.name,
                         args.seconds, args.peak_bytes)
    print(f"{len(run.panels)} panel(s) imported -> {args.out}")
    return 0


FORMS = {"baselines": (baselines_parser, cmd_baselines), "ablation": (ablation_parser, cmd_ablation),
         "import": (import_parser, cmd_import)}


def run(args: argparse.Namespace) -> int:
    """Parse the rest of the command line with its form's parser and run it."""
    argv: list[str] = args.argv
    if argv and argv[0] in FORMS:
        make, func = FORMS[argv[0]]
        return func(make().parse_args(argv[1:]))
    return cmd_metrics(metrics_parser().parse_args(argv))
