"""Expected failures and the exit code each one gets, shared by the command line, workers and the UI.

Exit codes: 0 ok, 2 bad input (story, sketch, settings), 3 model cannot be loaded, 4 output cannot
be written, 5 out of memory, 130 interrupted (finished panels are kept; rerun with --resume), 143
terminated (SIGTERM, handled as an interruption).
"""

from __future__ import annotations

import sys

EXIT_INPUT, EXIT_MODEL, EXIT_OUTPUT, EXIT_MEMORY, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 4, 5, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler stopping the job): stops the work exactly as Ctrl-C does."""


def interrupted_code(error: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(error, Terminated) else EXIT_INTERRUPTED


class CliError(Exception):
    """A failure whose message is for the user as it stands, with the exit code to give."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what to do."""


def exit_code(error: BaseException) -> int | None:
    """The exit code an expected failure gets; None for an unexpected one (a bug: show its traceback).

    Bad input is any ``ValueError``: ``StoryError``, ``SketchError`` and pydantic's errors are ones.
    """
    if isinstance(error, CliError):
        return error.code
    if _out_of_memory(error):
        return EXIT_MEMORY
    if isinstance(error, OSError):
        return EXIT_OUTPUT
    if isinstance(error, ModelLoadError):
        return EXIT_MODEL
    return EXIT_INPUT if isinstance(error, ValueError) else None


def _out_of_memory(error: BaseException) -> bool:
    torch = sys.modules.get("torch")  # an out-of-memory error from torch means torch is loaded
    return isinstance(error, MemoryError) or (torch is not None and isinstance(error, torch.OutOfMemoryError))
