"""Memory policies: which earlier panels a panel's MAGA layers read. No torch.

A policy is a ``+``-joined union of terms, panels counted from 0 as in the story file:

- ``all``          every earlier panel (the thesis; cost grows with the story)
- ``window:k``     the k panels just before
- ``anchors:i,j``  fixed reference panels (e.g. ``anchors:0``, the first panel)
- ``decay:g``      forgetting (the thesis's future work): panel m is read with weight g**age,
                   age = n-1-m, as a logit bias log(g)*age, and dropped once g**age < 5%
- ``none``         read nothing (MAGA layers then compute plain attention)

Every policy but ``all`` reads a bounded number of panels, so time and memory stay linear.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DECAY_CUTOFF = 0.05


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class MemoryPolicy:
    all: bool = False
    window: int = 0
    anchors: tuple[int, ...] = ()
    decay: float | None = None

    @property
    def decay_span(self) -> int:
        """How many panels back the forgetting term still reads."""
        if self.decay is None:
            return 0
        return int(math.floor(math.log(DECAY_CUTOFF) / math.log(self.decay))) + 1

    @property
    def span(self) -> int:
        return max(self.window, self.decay_span)

    def sources(self, n: int) -> tuple[int, ...]:
        """The earlier panels that panel ``n`` reads, ascending."""
        if self.all:
            return tuple(range(n))
        recent = range(max(0, n - self.span), n)
        return tuple(sorted({*recent, *(a for a in self.anchors if a < n)}))

    def log_weight(self, n: int, m: int) -> float:
        """Logit bias of the forgetting term for panel m seen from panel n (0 when not decayed)."""
        if self.decay is None or self.all or m in self.anchors or n - m <= self.window:
            return 0.0
        return math.log(self.decay) * (n - 1 - m)

    def closure(self, targets: Iterable[int], at_hand: Callable[[int], bool] = lambda m: False) -> list[int]:
        return closure(self.sources, targets, at_hand)


def closure(sources: Callable[[int], Iterable[int]], targets: Iterable[int],
            at_hand: Callable[[int], bool] = lambda m: False) -> list[int]:
    """Every panel whose memory the targets need, directly or through their ``sources``, ascending.

    A panel whose memory is ``at_hand`` (saved by an earlier run) is needed, its sources are not.
    """
    need: set[int] = set()
    todo = list(targets)
    while todo:
        n = todo.pop()
        for m in sources(n):
            if m not in need:
                need.add(m)
                if not at_hand(m):
                    todo.append(m)
    return sorted(need)


def parse_policy(spec: str) -> MemoryPolicy:
    """Parse e.g. ``"anchors:0+window:2"``; raise PolicyError with the accepted syntax."""
    usage = "use all, none, window:K, anchors:I,J, decay:G (0<G<1), joined with '+', e.g. anchors:0+window:2"
    fields: dict = {}
    for term in spec.replace(" ", "").split("+"):
        name, _, arg = term.partition(":")
        try:
            if name == "all" and not arg:
                fields["all"] = True
            elif name == "none" and not arg:
                pass
            elif name == "window":
                fields["window"] = int(arg)
                if fields["window"] < 1:
                    raise ValueError
            elif name == "anchors":
                fields["anchors"] = tuple(sorted({int(a) for a in arg.split(",")}))
                if any(a < 0 for a in fields["anchors"]):
                    raise ValueError
            elif name == "decay":
                fields["decay"] = float(arg)
                if not 0 < fields["decay"] < 1:
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            raise PolicyError(f"memory policy {spec!r}: bad term {term!r}; {usage}") from None
    return MemoryPolicy(**fields)
