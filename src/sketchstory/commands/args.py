"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_list(text: str) -> list[int]:
    """``"2,0,2"`` -> ``[0, 2]``: panel indices or counts, sorted and unique."""
    try:
        return sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas, like 0,2,3") from None


def size(text: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)`` (width, height)."""
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, e.g. 512x512") from None
    return w, h


def bounded(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` from ``low`` to ``high``, the limits named when it is not."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {'a whole' if kind is int else 'a'} number") from None
        if not (math.isfinite(value) and low <= value <= high):
            shown = (f"{low:g}", f"{high:g}") if kind is float else (str(low), str(high))
            raise argparse.ArgumentTypeError(f"{text}: give a number from {shown[0]} to {shown[1]}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


class SizeAction(argparse.Action):
    """Stores ``--size`` as the ``width`` and ``height`` settings; a single number N means N x N."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        namespace.width, namespace.height = values if isinstance(values, tuple) else (values, values)
