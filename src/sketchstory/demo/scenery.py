"""The toy world's settings: sky, ground and a few outlined props, laid out by a seeded generator.

Each setting draws the whole background of a panel and returns nothing; all props carry the
background label, so character masks never include scenery.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np

from sketchstory.demo.painter import RGB, Painter

SKY: RGB = (155, 205, 240)
GRASS: RGB = (110, 175, 80)
BARK: RGB = (115, 75, 45)
LEAF: RGB = (35, 115, 55)
STONE: RGB = (150, 150, 160)
ROOF: RGB = (150, 60, 50)
DOOR: RGB = (70, 50, 40)
SEA: RGB = (40, 110, 185)
SAND: RGB = (230, 210, 150)
SUN: RGB = (250, 225, 90)
NIGHT: RGB = (20, 25, 70)
HILL: RGB = (45, 55, 75)
MOON: RGB = (245, 240, 190)
STAR: RGB = (250, 250, 230)

Scenery = Callable[[Painter, np.random.Generator, float], None]


def _ground(p: Painter, sky: RGB, ground: RGB, y: float) -> None:
    p.fill_rect(0.0, y, sky)
    p.fill_rect(y, 1.0, ground)
    p.line([(0.0, y), (1.0, y)])


def forest(p: Painter, rng: np.random.Generator, y: float) -> None:
    _ground(p, SKY, GRASS, y)
    for x in np.sort(rng.uniform(0.05, 0.95, size=int(rng.integers(2, 5)))):
        h = rng.uniform(0.30, 0.50)
        base = y + rng.uniform(0.0, 0.04)
        p.polygon([(x - 0.025, base), (x + 0.025, base), (x + 0.025, base - 0.5 * h), (x - 0.025, base - 0.5 * h)], BARK)
        p.ellipse((x, base - 0.68 * h), (0.32 * h, 0.34 * h), LEAF)


def castle(p: Painter, rng: np.random.Generator, y: float) -> None:
    _ground(p, SKY, GRASS, y)
    left, right = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
    top = y - rng.uniform(0.30, 0.40)
    edges = np.linspace(left, right, 8)
    wall = [(left, y)]
    for i, (a, b) in enumerate(pairwise(edges)):
        h = top - 0.04 if i % 2 == 0 else top  # alternate merlons and gaps along the top
        wall += [(a, h), (b, h)]
    p.polygon(wall + [(right, y)], STONE)
    for x in (left, right):
        p.polygon([(x - 0.07, y), (x + 0.07, y), (x + 0.07, top - 0.12), (x - 0.07, top - 0.12)], STONE)
        p.polygon([(x - 0.09, top - 0.12), (x + 0.09, top - 0.12), (x, top - 0.28)], ROOF)
    mid = (left + right) / 2
    p.polygon([(mid - 0.06, y), (mid + 0.06, y), (mid + 0.06, y - 0.12), (mid, y - 0.17), (mid - 0.06, y - 0.12)], DOOR)


def sea(p: Painter, rng: np.random.Generator, y: float) -> None:
    horizon = y - rng.uniform(0.18, 0.28)
    p.fill_rect(0.0, horizon, SKY)
    p.fill_rect(horizon, y, SEA)
    p.fill_rect(y, 1.0, SAND)
    p.line([(0.0, horizon), (1.0, horizon)])
    p.line([(0.0, y), (1.0, y)])
    p.ellipse((rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.25)), (0.08, 0.08), SUN)
    for _ in range(int(rng.integers(2, 5))):
        x, wy = rng.uniform(0.05, 0.85), rng.uniform(horizon + 0.04, y - 0.03)
        p.line([(x, wy), (x + 0.04, wy - 0.02), (x + 0.08, wy), (x + 0.12, wy - 0.02)])


def night(p: Painter, rng: np.random.Generator, y: float) -> None:
    _ground(p, NIGHT, HILL, y)
    cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.25)
    p.ellipse((cx, cy), (0.08, 0.08), MOON)
    p.ellipse((cx + 0.04, cy - 0.02), (0.065, 0.065), NIGHT, outline=False)
    for _ in range(int(rng.integers(4, 9))):
        p.dot((rng.uniform(0.03, 0.97), rng.uniform(0.03, y - 0.25)), 0.008, STAR)


SETTINGS: dict[str, Scenery] = {"forest": forest, "castle": castle, "sea": sea, "night": night}
SETTING_PHRASES: dict[str, str] = {
    "forest": "in a forest",
    "castle": "in front of a castle",
    "sea": "by the sea",
    "night": "under the night sky",
}
