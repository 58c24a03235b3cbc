"""Resumable training state: atomic checkpoints, a wall-clock save cadence and per-step seeds.

Every random draw of a training step comes from a generator seeded by (run seed, phase, step), so a
run resumed from a checkpoint takes exactly the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

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


class Progress:
    """A phase's step count, training seconds and recent losses (all checkpointed with it), its
    progress bar and its log lines. ``for step in progress.steps(): ...; progress.record(loss)``."""

    def __init__(self, phase: str, total: int, log_every: int, log: logging.Logger,
                 state: dict[str, Any] | None = None) -> None:
        self.phase, self.total, self.log_every, self.log = phase, total, log_every, log
        state = state or {}
        self.step: int = state.get("step", 0)
        self.elapsed: float = state.get("elapsed", 0.0)
        self.recent: list[float] = state.get("recent", [])

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "elapsed": self.elapsed, "recent": self.recent}

    def mean(self) -> float:
        return sum(self.recent) / max(1, len(self.recent))

    def steps(self) -> Iterator[int]:
        """Yields the steps still to take; each must ``record`` its loss before the next."""
        bar = tqdm(total=self.total, initial=self.step, desc=self.phase, unit="step")
        while self.step < self.total:
            self._start = time.monotonic()
            yield self.step
            bar.update(1)
            bar.set_postfix(loss=f"{self.recent[-1]:.4f}")
        bar.close()

    def record(self, loss: float, extra: str = "") -> None:
        self.step += 1
        self.elapsed += time.monotonic() - self._start
        self.recent = (self.recent + [loss])[-self.log_every:]
        if self.step % self.log_every == 0:
            self.log.info("%s step %d/%d loss %.4f%s (%.2f s/step)", self.phase, self.step, self.total,
                          self.mean(), extra, self.elapsed / self.step)
