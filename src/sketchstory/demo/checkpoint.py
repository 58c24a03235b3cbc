"""Resumable training state: atomic checkpoints, a wall-clock save cadence and per-step seeds.

Every random draw of a training step comes from a generator seeded by (run seed, phase, step), so a
run resumed from a checkpoint takes exactly the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchstory.atomic import atomic_path


def step_generator(seed: int, phase: str, step: int) -> torch.Generator:
    entropy = np.random.SeedSequence([seed, int.from_bytes(phase.encode(), "little"), step])
    return torch.Generator().manual_seed(int(entropy.generate_state(1, np.uint64)[0] >> 1))


def save(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none yet."""
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


class Cadence:
    """True every ``minutes`` of wall time (and never when ``minutes`` <= 0 says "only at the end")."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60.0
        self.last = time.monotonic()

    def due(self) -> bool:
        if self.seconds <= 0 or time.monotonic() - self.last < self.seconds:
            return False
        self.last = time.monotonic()
        return True
