"""A toy comic world, drawn procedurally and deterministically per seed.

A scene is one character (wizard, knight, cat, robot) in one setting (forest, castle, sea, night
sky), in a pose, at a position and size. Its caption says the character's kind, its ``body``
colour (robe, armour, fur, casing), pose, setting and position. Two further parts per character
(e.g. the wizard's cape and hat) get colours that the caption never says: a model trained on this
world must draw them at random, and only looking at other panels (MAGA) can keep them the same
across a story. Every sample comes with its line sketch and the masks of the character's parts,
so the colours can be read back from generated images at the right place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sketchstory.demo.figures import FIGURES, HIDDEN_PARTS, Frame
from sketchstory.demo.painter import RGB, Painter
from sketchstory.demo.scenery import SETTING_PHRASES, SETTINGS
from sketchstory.models import SKETCH_PREFIX

# Colours are far apart in CIELAB (see consistency.py) so that a read-back colour names one of them.
COLOURS: dict[str, RGB] = {
    "red": (215, 40, 40),
    "yellow": (245, 215, 40),
    "green": (45, 160, 70),
    "blue": (40, 90, 230),
    "purple": (175, 50, 185),
    "white": (240, 240, 240),
}
KINDS: tuple[str, ...] = tuple(FIGURES)
POSES: tuple[str, ...] = ("standing", "walking", "jumping")
POSITIONS: tuple[str, ...] = ("left", "middle", "right")

_DESCRIPTIONS = {
    "wizard": "wizard in a {} robe",
    "knight": "knight in {} armour",
    "cat": "{} cat",
    "robot": "{} robot",
}
_POSITION_PHRASES = {"left": "on the left", "middle": "in the middle", "right": "on the right"}
# Character height as a share of the image height: large enough that the character covers about
# a tenth of the picture (25 of the 256 latent tokens), so what MAGA must carry is worth learning.
_SCALE_RANGE = (0.58, 0.8)
_JUMP = 0.12  # jumping lifts the feet by this share of the character's height


@dataclass(frozen=True)
class Character:
    """Who is drawn: ``colour`` is said in captions, ``hidden`` (part -> colour name) never is."""

    kind: str
    colour: str
    hidden: dict[str, str] = field(hash=False)

    def __post_init__(self) -> None:
        if self.kind not in FIGURES:
            raise ValueError(f"unknown character kind {self.kind!r}; choose one of {KINDS}")
        for name in (self.colour, *self.hidden.values()):
            if name not in COLOURS:
                raise ValueError(f"unknown colour {name!r}; choose one of {tuple(COLOURS)}")
        if set(self.hidden) != set(HIDDEN_PARTS[self.kind]):
            raise ValueError(f"a {self.kind} has hidden parts {HIDDEN_PARTS[self.kind]}, got {tuple(self.hidden)}")


@dataclass(frozen=True)
class Scene:
    """Everything that fixes one panel's picture; ``layout_seed`` places the scenery props."""

    character: Character
    setting: str
    pose: str
    position: str
    scale: float
    x: float
    ground: float
    facing: int
    layout_seed: int
    article: str = "a"

    @property
    def caption(self) -> str:
        return self.describe(colour=True)

    def describe(self, colour: bool, setting: bool = True) -> str:
        """The caption; without ``colour`` it leaves the body colour unsaid too ("the wizard ..."), without
        ``setting`` the setting (for a second character in the same scene)."""
        kind = self.character.kind
        who = _DESCRIPTIONS[kind].format(self.character.colour) if colour else kind
        where = f" {SETTING_PHRASES[self.setting]}" if setting else ""
        return f"{self.article} {who} {self.pose}{where}, {_POSITION_PHRASES[self.position]}"


@dataclass(frozen=True)
class Sample:
    """One rendered panel. ``masks`` maps ``body``, each hidden part, and ``character`` (the union
    of all parts) to boolean HxW masks of the pixels that show that part's flat colour."""

    scene: Scene
    image: np.ndarray  # HxWx3 uint8 RGB
    sketch: np.ndarray  # HxW uint8, dark lines on white
    masks: dict[str, np.ndarray]
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the character

    @property
    def caption(self) -> str:
        return self.scene.caption

    @property
    def sketch_caption(self) -> str:
        return SKETCH_PREFIX + self.scene.caption

    @property
    def hidden_masks(self) -> dict[str, np.ndarray]:
        return {part: self.masks[part] for part in self.scene.character.hidden}


@dataclass(frozen=True)
class Story:
    """Panels that show one character (same spoken and hidden colours) in different scenes."""

    character: Character
    panels: tuple[Sample, ...]

    @property
    def captions(self) -> list[str]:
        return [p.caption for p in self.panels]


def random_character(rng: np.random.Generator) -> Character:
    kind = KINDS[rng.integers(len(KINDS))]
    names = list(COLOURS)
    colour = names[rng.integers(len(names))]
    hidden = {part: names[rng.integers(len(names))] for part in HIDDEN_PARTS[kind]}
    return Character(kind, colour, hidden)


def random_scene(rng: np.random.Generator, character: Character | None = None, article: str | None = None) -> Scene:
    """A random scene; ``character`` fixes who is in it (for stories)."""
    character = character or random_character(rng)
    setting = tuple(SETTINGS)[rng.integers(len(SETTINGS))]
    pose = POSES[rng.integers(len(POSES))]
    position = POSITIONS[rng.integers(len(POSITIONS))]
    scale = float(rng.uniform(*_SCALE_RANGE))
    margin = 0.42 * scale + 0.02  # keeps the cape and props inside the frame
    centre = {"left": margin + 0.05, "middle": 0.5, "right": 1.0 - margin - 0.05}[position]
    x = float(centre + rng.uniform(-0.05, 0.05))
    ground = float(rng.uniform(0.76, 0.84))
    facing = int(rng.choice((-1, 1)))
    layout_seed = int(rng.integers(2**31))
    article = article or ("a", "the")[rng.integers(2)]
    return Scene(character, setting, pose, position, scale, x, ground, facing, layout_seed, article)


def draw_figure(p: Painter, scene: Scene, first_label: int = 1) -> dict[str, int]:
    """Draw the scene's character (not its setting) with part labels from ``first_label``; returns them by part."""
    ch = scene.character
    parts = ("figure", "body", *HIDDEN_PARTS[ch.kind])
    labels = {name: first_label + i for i, name in enumerate(parts)}
    colours = {"body": COLOURS[ch.colour]} | {part: COLOURS[c] for part, c in ch.hidden.items()}
    feet = scene.ground + 0.06 - (_JUMP * scene.scale if scene.pose == "jumping" else 0.0)
    FIGURES[ch.kind](p, Frame(scene.x, feet, scene.scale, scene.facing), scene.pose, colours, labels)
    return labels


def figure_masks(p: Painter, labels: dict[str, int]) -> tuple[dict[str, np.ndarray], tuple[int, int, int, int]]:
    """A drawn figure's part masks (``Sample.masks``) and the bounding box of what shows of it."""
    masks = {name: p.mask([label]) for name, label in labels.items() if name != "figure"}
    masks["character"] = p.mask(list(labels.values()))
    ys, xs = np.nonzero(p.footprint(list(labels.values())))
    return masks, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def render(scene: Scene, size: int = 64) -> Sample:
    """Draw ``scene`` at ``size`` x ``size`` pixels."""
    p = Painter(size)
    SETTINGS[scene.setting](p, np.random.default_rng(scene.layout_seed), scene.ground)
    labels = draw_figure(p, scene)
    image, sketch = p.finish()
    masks, bbox = figure_masks(p, labels)
    return Sample(scene, image, sketch, masks, bbox)


def sample(seed: int, size: int = 64) -> Sample:
    """The world's sample number ``seed``: the same picture, sketch and caption on every machine."""
    return render(random_scene(np.random.default_rng(seed)), size)


def make_story(seed: int, n_panels: int = 4, size: int = 64) -> Story:
    """``n_panels`` scenes of one character; the first panel says "a", the others "the"."""
    if n_panels < 1:
        raise ValueError(f"a story needs at least one panel, got {n_panels}")
    rng = np.random.default_rng([seed, 1])  # a stream apart from sample(seed)'s
    character = random_character(rng)
    scenes = [random_scene(rng, character, "a" if i == 0 else "the") for i in range(n_panels)]
    return Story(character, tuple(render(s, size) for s in scenes))


def with_character(scene: Scene, character: Character) -> Scene:
    """The same scene with someone else in it (e.g. to vary only the hidden colours)."""
    return replace(scene, character=character)
