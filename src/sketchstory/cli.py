"""The ``sketchstory`` command: one entry point, one subcommand per job.

Exit codes: 0 ok, 2 bad input (story, sketch, settings), 3 model cannot be loaded,
4 output cannot be written, 5 out of memory, 130 interrupted (finished panels are kept; rerun
with --resume).
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from sketchstory import __version__
from sketchstory.commands.args import int_list, size

EXIT_INPUT, EXIT_MODEL, EXIT_OUTPUT, EXIT_MEMORY, EXIT_INTERRUPTED = 2, 3, 4, 5, 130


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def add_settings_args(p: argparse.ArgumentParser) -> None:
    """Flags that override the story's ``settings`` (and are recorded in the outputs)."""
    g = p.add_argument_group("generation settings (override the story file)")
    g.add_argument("--model", help="registry name (see `sketchstory models`), hub id, local folder or .safetensors")
    g.add_argument("--controlnet", help="Canny ControlNet: hub id, local folder or file (default: the model's)")
    g.add_argument("--size", type=size, metavar="WxH", help="output size, multiples of 8")
    g.add_argument("--steps", type=int, help="denoising steps")
    g.add_argument("--guidance", type=float, dest="guidance_scale", help="classifier-free guidance scale")
    g.add_argument("--controlnet-scale", type=float, help="ControlNet conditioning scale (0 ignores sketches)")
    g.add_argument("--scheduler", choices=["ddim", "dpmpp-2m", "euler", "unipc"])
    g.add_argument("--seed", type=int, help="base seed for panels without their own seed")
    g.add_argument("--mode", choices=["sequential", "batched"],
                   help="sequential: panel after panel (thesis); batched: panels denoised together with a causal mask")
    g.add_argument("--chunk-size", type=int, help="batched mode: panels per batch (0 = all)")
    m = p.add_argument_group("MAGA (consistency memory)")
    m.add_argument("--no-maga", action="store_true", help="plain ControlNet generation, no shared memory")
    m.add_argument("--maga-start-layer", type=int, dest="start_layer",
                   help="first MAGA layer, in SD1.5's 16 self-attention layers (thesis: 8)")
    m.add_argument("--maga-start-step", dest="start_step",
                   help="first MAGA step: an index, or 'a/b' scaled to --steps (thesis: 24/50)")
    m.add_argument("--memory", help="memory policy, e.g. all, window:3, anchors:0+window:2, decay:0.7")
    m.add_argument("--maga-strength", type=float, dest="strength",
                   help="condition-aware weighting lambda (0 = plain shared attention)")
    m.add_argument("--token-budget", type=int, help="tokens shared per memory panel and layer (default: all)")
    m.add_argument("--memory-budget-mb", type=float, help="cap on the memory bank; lowers the token budget to fit")
    m.add_argument("--subject-mask", action="store_true", default=None,
                   help="share only the sketched subject's tokens (keeps backgrounds from bleeding)")


def apply_settings_args(story, args: argparse.Namespace):
    """The story with its settings overridden by the given flags, validated again."""
    from sketchstory.story import parse_story

    data = story.model_dump(mode="json", by_alias=True)
    s, m = data["settings"], data["settings"]["maga"]
    for key in ("model", "controlnet", "steps", "guidance_scale", "controlnet_scale", "scheduler", "seed", "mode",
                "chunk_size"):
        if getattr(args, key, None) is not None:
            s[key] = getattr(args, key)
    if getattr(args, "size", None):
        s["width"], s["height"] = args.size
    if getattr(args, "no_maga", False):
        m["enabled"] = False
    for key in ("start_layer", "strength", "token_budget", "memory_budget_mb", "subject_mask"):
        if getattr(args, key, None) is not None:
            m[key] = getattr(args, key)
    if getattr(args, "memory", None) is not None:
        m["memory"] = args.memory
    if getattr(args, "start_step", None) is not None:
        m["start_step"] = int(args.start_step) if args.start_step.isdigit() else args.start_step
    return parse_story(data, "command-line settings")


def cmd_generate(args: argparse.Namespace) -> int:
    from sketchstory.pipeline.runner import RunOptions, generate
    from sketchstory.story import load_story

    story = apply_settings_args(load_story(args.story), args)
    options = RunOptions(resume=args.resume, only=frozenset(args.only) if args.only else None, keep_memory=args.keep_memory, device=args.device,
                         offload=args.offload, library=args.library, progress=not args.quiet)
    report = generate(story, args.story.parent, args.out, options)
    print(f"{len(report.rendered)} panel(s) rendered, {len(report.reused)} kept, "
          f"{len(report.recomputed)} recomputed for memory, in {report.seconds:.1f} s -> {args.out}")
    if (args.out / "strip.png").exists():
        print(f"comic strip: {args.out / 'strip.png'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sketchstory.pipeline.conditions import read_sketches
    from sketchstory.story import load_story
    from sketchstory.tokenizer import clip_tokenizer, long_prompts

    story = load_story(args.story)
    read_sketches(story, args.story.parent, args.library)
    for warning in long_prompts(story, clip_tokenizer()):  # every SD1.5 model reads CLIP's 77 tokens
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.story}: ok, {len(story.panels)} panel(s), model {story.settings.model}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from sketchstory.models import REGISTRY

    for spec in REGISTRY.values():
        print(f"{spec.name:8} {spec.description}\n{'':8} base: {spec.base}\n{'':8} controlnet: {spec.controlnet}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from sketchstory.bench.scaling import SCENARIOS, run_bench, table, write_results
    from sketchstory.models import default_device

    device, dtype = default_device(args.device)
    if args.quick:
        args.size, args.steps, args.panels = 64, 2, [1, 2, 4]
    gpu = device.type == "cuda"  # the issue's GPU setting: SD1.5's own size and a real step count, fp16
    args.size = args.size or (512 if gpu else 128)
    args.steps = args.steps or (30 if gpu else 4)
    panels = args.panels + ([16] if args.long else [])
    scenarios = tuple(s for s in SCENARIOS if not args.quick or s.name in ("plain", "maga", "maga-all"))
    print(f"building {args.arch} with random weights on {device} ...", flush=True)
    if args.arch == "sd15":
        from sketchstory.bench.architectures import sd15_components

        components = sd15_components(device, dtype)
    else:
        from sketchstory.tiny import tiny_components

        components = tiny_components(device, dtype)
    with torch.inference_mode():
        result = run_bench(components, panels, args.size, args.steps, scenarios)
    write_results(result, args.out)
    print(table(result))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchstory",
        description="Consistent comics and storyboards from sketches: SD1.5 + Canny ControlNet + MAGA memory.",
        epilog="Exit codes: 0 ok, 2 bad input, 3 model cannot be loaded, 4 output not writable, 5 out of memory, "
               "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"sketchstory {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="stage 2: render a story's panels, strip and metadata")
    p.add_argument("story", type=Path, help="story file (JSON)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="keep finished panels whose inputs did not change")
    p.add_argument("--only", type=int_list, metavar="I,J", help="regenerate only these panels (0-based)")
    p.add_argument("--keep-memory", action="store_true",
                   help="save MAGA memory per panel so later --only/--resume runs need not recompute it")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--offload", action="store_true", help="CUDA: keep models in CPU memory until used (less VRAM)")
    p.add_argument("--library", type=Path,
                   help="sketch library for library:ID sketches (default: $SKETCHSTORY_LIBRARY or the user library)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_settings_args(p)
    p.set_defaults(func=cmd_generate)

    from sketchstory.commands import batch, eval as eval_command, library, sketch, story
    from sketchstory.ui.cli import add_ui_parser

    sketch.register(sub)
    story.register(sub)
    library.register(sub)
    eval_command.register(sub)
    batch.register(sub)
    add_ui_parser(sub)

    p = sub.add_parser("check", help="validate a story file and its sketches")
    p.add_argument("story", type=Path)
    p.add_argument("--library", type=Path, help="sketch library for library:ID sketches")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("bench", help="time and memory vs number of panels: plain ControlNet vs MAGA modes/policies")
    p.add_argument("--arch", choices=["sd15", "tiny"], default="sd15",
                   help="sd15: the full SD1.5 + ControlNet architecture with random weights (default)")
    p.add_argument("--size", type=int, help="image size (default: 512 on a GPU, 128 on CPU)")
    p.add_argument("--steps", type=int, help="denoising steps (default: 30 on a GPU, 4 on CPU)")
    p.add_argument("--panels", type=int_list, default=[1, 2, 4, 8], metavar="N,M",
                   help="story lengths to measure (default 1,2,4,8)")
    p.add_argument("--long", action="store_true", help="also measure 16 panels")
    p.add_argument("--quick", action="store_true",
                   help="64 px, 2 steps, 1/2/4 panels, 3 scenarios: about 2.5 minutes on 2 CPU cores")
    p.add_argument("--device")
    p.add_argument("-o", "--out", type=Path, default=Path("out/bench"))
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("models", help="list the named models")
    p.set_defaults(func=cmd_models)
    return parser


def exit_code(error: BaseException) -> int | None:
    """The exit code an expected failure gets; None for an unexpected one (a bug: show its traceback)."""
    from sketchstory.models import ModelLoadError
    from sketchstory.sketches import SketchError
    from sketchstory.story import StoryError

    if isinstance(error, CliError):
        return error.code
    if _out_of_memory(error):
        return EXIT_MEMORY
    if isinstance(error, OSError):
        return EXIT_OUTPUT
    if isinstance(error, ModelLoadError):
        return EXIT_MODEL
    return EXIT_INPUT if isinstance(error, StoryError | SketchError | ValueError) else None


def _out_of_memory(error: BaseException) -> bool:
    torch = sys.modules.get("torch")  # an out-of-memory error from torch means torch is loaded
    return isinstance(error, MemoryError) or (torch is not None and isinstance(error, torch.OutOfMemoryError))


OUT_OF_MEMORY_HINT = ("finished panels are kept; rerun with --resume after lowering the load: a smaller --size, "
                      "--offload (GPU), a smaller --chunk-size or --mode sequential, a --token-budget, or "
                      "--memory window:1")


def _message(e: Exception, code: int, args: argparse.Namespace) -> str:
    """What the user reads for an expected failure with exit ``code``."""
    if code == EXIT_MEMORY:
        return f"out of memory ({str(e).splitlines()[0] if str(e) else type(e).__name__}): {OUT_OF_MEMORY_HINT}"
    if not isinstance(e, OSError):
        return str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = getattr(args, "out", None) or (Path(e.filename).parent if e.filename else Path.cwd())
        rerun = "rerun with --resume (finished panels are kept)" if hasattr(args, "resume") else "run the command again"
        return f"disk full while writing {e.filename or 'a file'}: free space in {folder} and {rerun}"
    return f"cannot read or write {e.filename or ''}: {e.strerror or e}"


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, turning expected failures into one clear message and an exit code."""
    try:
        return func(args)
    except KeyboardInterrupt:
        print("interrupted: finished panels are kept; rerun the same command with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        code = exit_code(e)
        if code is None:  # a bug: its traceback is what helps
            raise
        print(f"error: {_message(e, code, args)}", file=sys.stderr)
        return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
