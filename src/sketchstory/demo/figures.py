"""The toy world's characters, each built from a few flat parts.

Every figure is drawn in its own frame: the origin is between its feet, one unit is its full
height, ``dy`` grows downward (so the head is near ``dy = -0.8``) and ``dx`` points the way it
faces. Each figure draws its spoken part (``body``: robe, armour, fur, casing) and two hidden parts
with the colours and part labels it is given; everything else (skin, steel, wood) has a fixed
colour and the generic ``figure`` label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sketchstory.demo.painter import RGB, Painter, Point

SKIN: RGB = (240, 200, 160)
STEEL: RGB = (165, 170, 180)
WOOD: RGB = (130, 85, 45)
BOOT: RGB = (80, 55, 40)
BEARD: RGB = (235, 235, 225)
GLOW: RGB = (120, 230, 240)

# How far apart the feet are and where the hands go, per pose (frame units).
_STRIDE = {"standing": 0.05, "walking": 0.13, "jumping": 0.15}


@dataclass(frozen=True)
class Frame:
    """A figure's placement on the canvas: feet at (x, y), ``height`` canvas units tall."""

    x: float
    y: float
    height: float
    facing: int  # +1 faces right, -1 faces left

    def __call__(self, dx: float, dy: float) -> Point:
        return (self.x + self.facing * dx * self.height, self.y + dy * self.height)

    def pts(self, *local: Point) -> list[Point]:
        return [self(dx, dy) for dx, dy in local]

    def axes(self, a: float, b: float) -> tuple[float, float]:
        return (a * self.height, b * self.height)

    def w(self, width: float) -> float:
        return width * self.height


Figure = Callable[[Painter, Frame, str, Mapping[str, RGB], Mapping[str, int]], None]


def _cape(p: Painter, f: Frame, top: float, colour: RGB, label: int) -> None:
    """A cape hanging from the shoulders and flaring out behind the figure."""
    p.polygon(f.pts((-0.11, top), (0.07, top), (0.15, -0.08), (-0.40, -0.04)), colour, label)


def wizard(p: Painter, f: Frame, pose: str, col: Mapping[str, RGB], lab: Mapping[str, int]) -> None:
    """Hidden parts: ``cape``, ``hat``."""
    s = _STRIDE[pose]
    _cape(p, f, -0.64, col["cape"], lab["cape"])
    for side in (-1, 1):
        p.ellipse(f(side * s, -0.03), f.axes(0.07, 0.035), BOOT, lab["figure"])
    hand = (0.26, -0.72) if pose == "jumping" else (0.24, -0.42)
    p.stick(f.pts((hand[0], hand[1] + 0.36), (hand[0], hand[1] - 0.26)), WOOD, f.w(0.035), lab["figure"])
    p.ellipse(f(hand[0], hand[1] - 0.29), f.axes(0.045, 0.045), GLOW, lab["figure"])
    p.polygon(f.pts((-0.11, -0.66), (0.11, -0.66), (0.21, -0.05), (-0.21, -0.05)), col["body"], lab["body"])
    p.stick(f.pts((0.04, -0.60), hand), col["body"], f.w(0.07), lab["body"])
    p.ellipse(f(*hand), f.axes(0.035, 0.035), SKIN, lab["figure"])
    p.ellipse(f(0.0, -0.74), f.axes(0.09, 0.09), SKIN, lab["figure"])
    p.polygon(f.pts((-0.05, -0.71), (0.09, -0.71), (0.03, -0.56)), BEARD, lab["figure"])
    p.dot(f(0.045, -0.765), f.w(0.014))
    p.polygon(f.pts((-0.20, -0.77), (0.19, -0.77), (-0.03, -1.0)), col["hat"], lab["hat"])


def knight(p: Painter, f: Frame, pose: str, col: Mapping[str, RGB], lab: Mapping[str, int]) -> None:
    """Hidden parts: ``cape``, ``shield``."""
    s = _STRIDE[pose]
    _cape(p, f, -0.70, col["cape"], lab["cape"])
    for side in (-1, 1):
        p.stick(f.pts((side * 0.06, -0.36), (side * s, -0.04)), STEEL, f.w(0.08), lab["figure"])
    sword = [(0.20, -0.62), (0.30, -1.0)] if pose == "jumping" else [(0.20, -0.45), (0.44, -0.22)]
    p.stick(f.pts(*sword), STEEL, f.w(0.03), lab["figure"])
    p.polygon(f.pts((-0.15, -0.72), (0.15, -0.72), (0.12, -0.33), (-0.12, -0.33)), col["body"], lab["body"])
    p.ellipse(f(0.0, -0.84), f.axes(0.11, 0.12), STEEL, lab["figure"])
    p.line(f.pts((0.0, -0.86), (0.11, -0.86)))
    p.ellipse(f(0.12, -0.52), f.axes(0.12, 0.16), col["shield"], lab["shield"])


def cat(p: Painter, f: Frame, pose: str, col: Mapping[str, RGB], lab: Mapping[str, int]) -> None:
    """Hidden parts: ``scarf``, ``hat``. The spoken colour is the fur."""
    s = _STRIDE[pose]
    fur, body = col["body"], lab["body"]
    p.stick(f.pts((-0.16, -0.18), (-0.34, -0.30), (-0.34, -0.55)), fur, f.w(0.06), body)
    for side in (-1, 1):
        p.ellipse(f(side * s * 0.9, -0.04), f.axes(0.07, 0.04), fur, body)
    p.ellipse(f(0.0, -0.29), f.axes(0.20, 0.26), fur, body)
    paw_y = -0.62 if pose == "jumping" else -0.30
    for side in (-1, 1):
        p.ellipse(f(side * 0.17, paw_y), f.axes(0.05, 0.045), fur, body)
    p.polygon(f.pts((0.0, -0.50), (0.17, -0.50), (0.19, -0.24), (0.02, -0.24)), col["scarf"], lab["scarf"])
    p.polygon(f.pts((-0.20, -0.62), (0.20, -0.62), (0.19, -0.44), (-0.19, -0.44)), col["scarf"], lab["scarf"])
    for side in (-1, 1):
        p.polygon(f.pts((side * 0.16, -0.70), (side * 0.04, -0.80), (side * 0.15, -0.90)), fur, body)
    p.ellipse(f(0.0, -0.69), f.axes(0.18, 0.14), fur, body)
    for side in (-1, 1):
        p.dot(f(side * 0.06 + 0.03, -0.71), f.w(0.018))
    p.polygon(f.pts((-0.17, -0.74), (0.21, -0.74), (0.04, -1.0)), col["hat"], lab["hat"])


def robot(p: Painter, f: Frame, pose: str, col: Mapping[str, RGB], lab: Mapping[str, int]) -> None:
    """Hidden parts: ``cape``, ``chest`` (the panel on its casing)."""
    s = _STRIDE[pose]
    _cape(p, f, -0.68, col["cape"], lab["cape"])
    for side in (-1, 1):
        p.stick(f.pts((side * 0.07, -0.30), (side * s, -0.05)), STEEL, f.w(0.08), lab["figure"])
        p.polygon(f.pts((side * s - 0.06, -0.06), (side * s + 0.06, -0.06),
                        (side * s + 0.06, 0.0), (side * s - 0.06, 0.0)), STEEL, lab["figure"])
    hand_y = -0.88 if pose == "jumping" else -0.36
    for side in (-1, 1):
        p.stick(f.pts((side * 0.17, -0.64), (side * 0.27, hand_y)), STEEL, f.w(0.06), lab["figure"])
    p.polygon(f.pts((-0.17, -0.71), (0.17, -0.71), (0.17, -0.29), (-0.17, -0.29)), col["body"], lab["body"])
    p.polygon(f.pts((-0.10, -0.63), (0.10, -0.63), (0.10, -0.41), (-0.10, -0.41)), col["chest"], lab["chest"])
    p.line(f.pts((0.0, -0.86), (0.0, -0.97)))
    p.dot(f(0.0, -0.975), f.w(0.025))
    p.polygon(f.pts((-0.12, -0.87), (0.12, -0.87), (0.12, -0.72), (-0.12, -0.72)), STEEL, lab["figure"])
    for side in (-1, 1):
        p.dot(f(side * 0.05 + 0.02, -0.80), f.w(0.018))


FIGURES: dict[str, Figure] = {"wizard": wizard, "knight": knight, "cat": cat, "robot": robot}
HIDDEN_PARTS: dict[str, tuple[str, str]] = {
    "wizard": ("cape", "hat"),
    "knight": ("cape", "shield"),
    "cat": ("scarf", "hat"),
    "robot": ("cape", "chest"),
}
