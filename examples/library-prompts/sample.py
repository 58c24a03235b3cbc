"""The sample library's contents, as toy-world scenes: three stories of four scenes, eight objects.

The prompts are the toy world's own captions (``sketchstory.demo.world.Scene.caption``), the
words the bundled demo model was trained on, so its stage 1 can draw them.
"""

from __future__ import annotations

import numpy as np

from sketchstory.demo import world
from sketchstory.demo.figures import HIDDEN_PARTS

# (setting, pose, position) of a scene; who is in it comes from its story or object.
Place = tuple[str, str, str]

STORIES: list[tuple[str, list[str], tuple[str, str], list[tuple[str, Place]]]] = [
    ("The wizard's walk", ["wizard"], ("wizard", "blue"), [
        ("forest", ("forest", "standing", "left")), ("castle", ("castle", "walking", "middle")),
        ("sea", ("sea", "jumping", "right")), ("night", ("night", "standing", "middle"))]),
    ("The knight at the sea", ["knight"], ("knight", "red"), [
        ("castle", ("castle", "standing", "right")), ("forest", ("forest", "walking", "left")),
        ("shore", ("sea", "walking", "middle")), ("leap", ("sea", "jumping", "right"))]),
    ("The cat's night out", ["cat"], ("cat", "white"), [
        ("forest", ("forest", "walking", "middle")), ("castle", ("castle", "jumping", "left")),
        ("night", ("night", "walking", "right")), ("home", ("forest", "standing", "left"))]),
]

OBJECTS: dict[str, list[tuple[tuple[str, str], Place]]] = {
    "robots": [(("robot", "green"), ("forest", "standing", "middle")), (("robot", "purple"), ("sea", "jumping", "left")),
               (("robot", "yellow"), ("castle", "walking", "right"))],
    "cats": [(("cat", "red"), ("night", "standing", "middle")), (("cat", "blue"), ("forest", "jumping", "right"))],
    "knights": [(("knight", "yellow"), ("night", "walking", "middle"))],
    "wizards": [(("wizard", "purple"), ("forest", "jumping", "middle")), (("wizard", "white"), ("sea", "standing", "left"))],
}

CANDIDATES = 3


def character(kind: str, colour: str) -> world.Character:
    # Hidden colours never appear in captions or sketches; any fixed choice will do.
    return world.Character(kind, colour, {part: "white" for part in HIDDEN_PARTS[kind]})


def scene(who: world.Character, place: Place, article: str, layout: int) -> world.Scene:
    """A toy-world scene of ``who`` at ``place``; ``layout`` picks one of its random layouts."""
    rng = np.random.default_rng(layout)
    while True:  # draw layouts until one has this setting, pose and position (1 in 36)
        s = world.random_scene(rng, who, article)
        if (s.setting, s.pose, s.position) == place:
            return s
