"""Two characters in the toy world: panels with one or both of a pair, and stories where they come and go.

A pair is two characters of different kinds whose hidden colours are apart: no hidden part of one
has any colour of the other (body or hidden part), so a hidden colour read back on the wrong
character says whose it was (identity mixing, ``study_characters.py``). In a panel with both, they
stand left and right, facing each other, the right one drawn in front; each keeps its own part
labels, so its masks hold only what shows of it, and its box is known from the drawing. A story's
panels have settings of their own, and each character appears at least twice, so every character
has an anchor (its first appearance) and later looks to compare with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sketchstory.demo import world
from sketchstory.demo.consistency import MIN_PIXELS
from sketchstory.demo.figures import HIDDEN_PARTS
from sketchstory.demo.painter import Painter
from sketchstory.demo.scenery import SETTINGS

# Both must fit side by side in 64 px and still show every hidden part (smaller than world's 0.58..0.8).
_PAIR_SCALE = (0.5, 0.62)
_PAIR_X = (0.28, 0.72)  # centres of the left and the right character
_TRIES = 100  # draws of a pair panel until every hidden part shows (a few at most in practice)
PRESENCE = ((0,), (1,), (0, 1))  # who a panel shows: the first, the second, or both


@dataclass(frozen=True)
class DuoPanel:
    """One rendered panel; per character shown (``who`` indexes the pair), its scene, masks and box."""

    who: tuple[int, ...]
    scenes: tuple[world.Scene, ...]
    image: np.ndarray  # HxWx3 uint8 RGB
    sketch: np.ndarray  # HxW uint8, dark lines on white
    masks: tuple[dict[str, np.ndarray], ...]  # as world.Sample.masks
    boxes: tuple[tuple[int, int, int, int], ...]  # x0, y0, x1, y1 (exclusive), pixels

    @property
    def setting(self) -> str:
        return self.scenes[0].setting

    @property
    def caption(self) -> str:
        first, *others = self.scenes
        return ", and ".join([first.caption] + [s.describe(colour=True, setting=False) for s in others])

    def of(self, character: int) -> int:
        """The position in ``scenes``/``masks``/``boxes`` of the pair's ``character``."""
        return self.who.index(character)

    def box_fraction(self, character: int) -> tuple[float, float, float, float]:
        """The character's box as fractions of the panel (story format's ``box``)."""
        h, w = self.image.shape[:2]
        x0, y0, x1, y1 = self.boxes[self.of(character)]
        return (x0 / w, y0 / h, x1 / w, y1 / h)

    @property
    def background(self) -> np.ndarray:
        return ~np.logical_or.reduce([m["character"] for m in self.masks])


@dataclass(frozen=True)
class DuoStory:
    pair: tuple[world.Character, world.Character]
    panels: tuple[DuoPanel, ...]

    @property
    def captions(self) -> list[str]:
        return [p.caption for p in self.panels]

    def appearances(self, character: int) -> list[int]:
        return [n for n, p in enumerate(self.panels) if character in p.who]


def apart(a: world.Character, b: world.Character) -> bool:
    """No hidden colour of either is any colour of the other."""
    colours_a, colours_b = {a.colour, *a.hidden.values()}, {b.colour, *b.hidden.values()}
    return not (set(a.hidden.values()) & colours_b or set(b.hidden.values()) & colours_a)


def random_pair(rng: np.random.Generator) -> tuple[world.Character, world.Character]:
    first = world.random_character(rng)
    while True:
        second = world.random_character(rng)
        if second.kind != first.kind and apart(first, second):
            return first, second


def random_presence(rng: np.random.Generator, n_panels: int) -> list[tuple[int, ...]]:
    """Who each panel shows: each character at least twice, both together at least once, and one alone at least once."""
    if n_panels < 3:
        raise ValueError(f"a two-character story needs at least 3 panels, got {n_panels}")
    while True:
        presence = [PRESENCE[i] for i in rng.integers(len(PRESENCE), size=n_panels)]
        counts = [sum(c in p for p in presence) for c in (0, 1)]
        if min(counts) >= 2 and (0, 1) in presence and any(len(p) == 1 for p in presence):
            return presence


def _render(scenes: list[world.Scene], size: int) -> tuple[np.ndarray, np.ndarray, list[dict], list[tuple]]:
    """Draw the scenes' shared setting (the first's) and each character in turn, later ones in front."""
    p = Painter(size)
    first = scenes[0]
    SETTINGS[first.setting](p, np.random.default_rng(first.layout_seed), first.ground)
    labels, next_label = [], 1
    for scene in scenes:
        labels.append(world.draw_figure(p, scene, next_label))
        next_label += len(labels[-1])
    image, sketch = p.finish()
    masks, boxes = zip(*(world.figure_masks(p, lab) for lab in labels), strict=True)
    return image, sketch, list(masks), list(boxes)


def _visible(masks: list[dict[str, np.ndarray]], scenes: list[world.Scene]) -> bool:
    return all(int(m[part].sum()) >= 2 * MIN_PIXELS
               for m, s in zip(masks, scenes, strict=True) for part in HIDDEN_PARTS[s.character.kind])


def pair_scenes(rng: np.random.Generator, characters: tuple[world.Character, ...], articles: tuple[str, ...]
                ) -> list[world.Scene]:
    """Both characters in one random scene: the first on the left or right at random, facing each other."""
    setting = tuple(SETTINGS)[rng.integers(len(SETTINGS))]
    ground = float(rng.uniform(0.76, 0.84))
    layout_seed = int(rng.integers(2**31))
    order = (0, 1) if rng.integers(2) == 0 else (1, 0)  # order[0] stands on the left
    scenes = {}
    for side, c in enumerate(order):
        pose = world.POSES[rng.integers(len(world.POSES))]
        scale = float(rng.uniform(*_PAIR_SCALE))
        x = float(_PAIR_X[side] + rng.uniform(-0.03, 0.03))
        scenes[c] = world.Scene(characters[c], setting, pose, ("left", "right")[side], scale, x, ground,
                                1 if side == 0 else -1, layout_seed, articles[c])
    return [scenes[c] for c in order]  # drawn left to right, so the right one stands in front


def render_panel(rng: np.random.Generator, pair: tuple[world.Character, world.Character], who: tuple[int, ...],
                 articles: tuple[str, str], size: int = 64) -> DuoPanel:
    """A random panel showing ``who`` of the pair; a pair panel is redrawn until every hidden part shows."""
    if len(who) == 1:
        sample = world.render(world.random_scene(rng, pair[who[0]], articles[who[0]]), size)
        return DuoPanel(who, (sample.scene,), sample.image, sample.sketch, (sample.masks,), (sample.bbox,))
    for _ in range(_TRIES):
        scenes = pair_scenes(rng, pair, articles)
        image, sketch, masks, boxes = _render(scenes, size)
        if _visible(masks, scenes):
            order = tuple(pair.index(s.character) for s in scenes)
            return DuoPanel(order, tuple(scenes), image, sketch, tuple(masks), tuple(boxes))
    raise RuntimeError(f"no drawing of {pair} in {_TRIES} tries shows every hidden part at {size} px")


def plain_caption(panel: DuoPanel) -> str:
    """The panel's caption without any body colour (the training set's unsaid captions)."""
    first, *others = panel.scenes
    return ", and ".join([first.describe(colour=False)] + [s.describe(colour=False, setting=False) for s in others])


def training_page(seed: int, size: int = 64) -> tuple[DuoPanel, DuoPanel]:
    """Two panels of one pair for training (``data.py``): the first shows both, the second both again
    or one of them, in other scenes; its own stream, apart from the held-out stories' (``make_duo_story``)."""
    rng = np.random.default_rng([seed, 4])
    pair = random_pair(rng)
    second = PRESENCE[rng.integers(len(PRESENCE))]
    return (render_panel(rng, pair, (0, 1), ("a", "a"), size),
            render_panel(rng, pair, second, ("the", "the"), size))


def make_duo_story(seed: int, n_panels: int = 4, size: int = 64) -> DuoStory:
    """``n_panels`` panels of a random pair, who come and go; a character's first panel says "a", later ones "the"."""
    rng = np.random.default_rng([seed, 2])  # a stream apart from world.sample's and world.make_story's
    pair = random_pair(rng)
    panels = []
    seen: set[int] = set()
    for who in random_presence(rng, n_panels):
        articles = ("the" if 0 in seen else "a", "the" if 1 in seen else "a")
        panels.append(render_panel(rng, pair, who, articles, size))
        seen |= set(who)
    return DuoStory(pair, tuple(panels))


def portrait(character: world.Character, seed: int, size: int = 64) -> world.Sample:
    """The character alone, standing large in the middle of a random setting: a reference picture."""
    scene = world.random_scene(np.random.default_rng([seed, 3]), character, "a")
    return world.render(world.Scene(character, scene.setting, "standing", "middle", 0.75, 0.5, scene.ground,
                                    scene.facing, scene.layout_seed, "a"), size)
