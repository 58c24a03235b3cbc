"""The ``sketchstory`` command: one entry point, one subcommand per module of :mod:`sketchstory.commands`.

Exit codes (see :mod:`sketchstory.errors`): 0 ok, 2 bad input (story, sketch, settings), 3 model
cannot be loaded, 4 output cannot be written, 5 out of memory, 130 interrupted (finished panels are
kept; rerun with --resume).
"""

from __future__ import annotations

import argparse
import errno
import io
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from sketchstory import __version__
from sketchstory.commands import (
    batch,
    bench,
    check,
    eval as eval_command,
    generate,
    library,
    models,
    sketch,
    story,
    ui,
)
from sketchstory.errors import EXIT_MEMORY, Terminated, exit_code, interrupted_code

COMMANDS = (generate, sketch, story, library, eval_command, batch, ui, check, bench, models)  # in --help's order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchstory",
        description="Consistent comics and storyboards from sketches: SD1.5 + Canny ControlNet + MAGA memory.",
        epilog="Exit codes: 0 ok, 2 bad input, 3 model cannot be loaded, 4 output not writable, 5 out of memory, "
               "130 interrupted, 143 terminated.",
    )
    parser.add_argument("--version", action="version", version=f"sketchstory {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


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
        code = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
        return code
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"{what}: finished panels are kept; rerun the same command with --resume", file=sys.stderr)
        return interrupted_code(e)
    except BrokenPipeError as e:
        if e.filename is not None:  # a file, not our output
            print(f"error: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
            return exit_code(e) or 1
        _quiet_stdout()  # the reader stopped reading (`| head`): as Unix tools do, stop quietly
        return 0
    except Exception as e:
        code = exit_code(e)
        if code is None:  # a bug: its traceback is what helps
            raise
        print(f"error: {_message(e, code, args)}", file=sys.stderr)
        return code


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    previous = signal.signal(signal.SIGTERM, _terminate)  # stop as Ctrl-C does: finished work is kept
    try:
        return run(args.func, args)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
