"""Character-routed memory: which earlier panels each character, and each setting's background, reads. No torch.

A *track* is the panels one character appears in, or the panels of one setting (read by their
backgrounds). The memory policy applies along each track, its panels counted from 0: with
``anchors:0+window:2`` a character reads its first appearance and its last two, however many panels
lie between, and never another character's regions (docs/maga.md, "Characters"). Forgetting
(``decay``) ages along the track too. A character's reference picture is a memory panel of its own
(a negative index) placed first on its track, so ``anchors:0`` then reads the reference.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sketchstory.attention.policy import MemoryPolicy, closure

CHARACTER, BACKGROUND = "character", "background"


@dataclass(frozen=True)
class Route:
    """Panel n's tokens of ``track`` read panel ``source``'s tokens of the same track."""

    track: int
    source: int
    log_weight: float  # the policy's forgetting term along the track (0: not decayed)


@dataclass(frozen=True)
class Tracks:
    policy: MemoryPolicy
    keys: tuple[tuple[str, str | None], ...]  # (CHARACTER, name) or (BACKGROUND, setting)
    panels: tuple[tuple[int, ...], ...]  # each track's panels, ascending (references, negative, first)

    def routes(self, n: int) -> tuple[Route, ...]:
        """What panel ``n`` reads along each track it is on."""
        out = []
        for t, members in enumerate(self.panels):
            j = bisect_left(members, n)
            if j < len(members) and members[j] == n:
                out += [Route(t, members[i], self.policy.log_weight(j, i)) for i in self.policy.sources(j)]
        return tuple(out)

    def sources(self, n: int) -> tuple[int, ...]:
        """The earlier panels that panel ``n`` reads on any track, ascending."""
        return tuple(sorted({r.source for r in self.routes(n)}))

    def closure(self, targets: Iterable[int], at_hand: Callable[[int], bool] = lambda m: False) -> list[int]:
        return closure(self.sources, targets, at_hand)

    def retained(self, n_panels: int) -> int:
        """Most panels the memory bank holds at once: those a later panel still reads, plus the one being written."""
        last_read: dict[int, int] = {}
        for n in range(n_panels):
            for m in self.sources(n):
                last_read[m] = n
        change = [0] * (n_panels + 1)
        for m, n in last_read.items():  # m is memory while panels m+1..n are denoised (a reference: 0..n)
            change[max(m + 1, 0)] += 1
            change[n + 1] -= 1
        most = held = 0
        for k in range(n_panels):
            held += change[k]
            most = max(most, held)
        return most + 1


def character_tracks(policy: MemoryPolicy, present: Sequence[Sequence[str]],
                     settings: Sequence[str | None] | None, references: Mapping[str, int] | None = None) -> Tracks:
    """Tracks of a story: ``present[n]`` names panel n's characters; ``settings[n]`` is its setting
    (panels without one share one unnamed setting), None: backgrounds read no memory at all;
    ``references`` maps a character to the (negative) memory panel of its reference picture."""
    keys: dict[tuple[str, str | None], list[int]] = {}
    for name, panel in sorted((references or {}).items(), key=lambda item: -item[1]):
        keys[(CHARACTER, name)] = [panel]
    for n, names in enumerate(present):
        for name in names:
            keys.setdefault((CHARACTER, name), []).append(n)
    for n, setting in enumerate(settings or ()):
        keys.setdefault((BACKGROUND, setting), []).append(n)
    return Tracks(policy, tuple(keys), tuple(tuple(p) for p in keys.values()))
