"""Story folders made from the toy world: the shipped examples and the consistency benchmark set.

A world story (one character, same spoken and hidden colours, different scenes) becomes a
sketchstory story file plus its sketches, ready for ``sketchstory generate``. The world's
captions are the prompts, so the demo model understands them; the hidden colours are never
said, so keeping them the same across panels is left to MAGA. A two-character story (``duo.py``)
is written routed by character (format 2: boxes and settings) or as one shared memory (format 1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from sketchstory.atomic import atomic_write_text
from sketchstory.demo import duo, world
from sketchstory.provenance import save_png

# The thesis's wizard story (Fig. 4.3), told with what the toy world can draw.
WIZARD = world.Character("wizard", "blue", {"cape": "red", "hat": "yellow"})
WIZARD_SCENES = [
    ("forest", "standing", "left", "A young wizard stands in a lush forest, holding a magical staff."),
    ("castle", "walking", "middle", "The wizard finds a blue high tall hat and put it on."),
    ("night", "standing", "right", "The wizard encounters a mystical creature. They engage in a friendly conversation."),
    ("sea", "jumping", "middle", "As the wizard touches the mystical creature, he turns into crystal."),
]


def wizard_story(size: int = 64) -> tuple[world.Story, list[str]]:
    """The example story's panels (world scenes) and the thesis's captions for them."""
    rng = np.random.default_rng(7)
    samples = []
    for i, (setting, pose, position, _) in enumerate(WIZARD_SCENES):
        scene = world.random_scene(rng, WIZARD, "a" if i == 0 else "the")
        scene = world.Scene(WIZARD, setting, pose, position, scene.scale,
                            {"left": 0.32, "middle": 0.5, "right": 0.68}[position], scene.ground, scene.facing,
                            scene.layout_seed, scene.article)
        samples.append(world.render(scene, size))
    return world.Story(WIZARD, tuple(samples)), [caption for *_, caption in WIZARD_SCENES]


def write_story_folder(folder: Path, story: world.Story, *, title: str, captions: list[str] | None = None,
                       prompts: list[str] | None = None, settings: dict | None = None,
                       placed: Literal["box", "mask"] | None = None, first_seed: int = 1000) -> Path:
    """Write ``story.json`` and ``sketches/NN.png`` for a world story; returns the story file. ``placed``:
    story format 2, the character placed in each panel with its box from the drawing (as a user does in the
    web UI's Characters tab) or its mask (``masks/NN.png``, the drawn figure), and the panel's setting, so
    MAGA routes the character and the background apart. Panel i's seed is ``first_seed + i``."""
    folder = Path(folder)
    panels = []
    for i, sample in enumerate(story.panels):
        rel = f"sketches/{i:02d}.png"
        save_png(Image.fromarray(sample.sketch, "L"), folder / rel)
        panel = {"prompt": (prompts or story.captions)[i], "sketch": rel, "seed": first_seed + i,
                 "caption": (captions or [None] * len(story.panels))[i]}
        if placed == "box":
            h, w = sample.sketch.shape
            x0, y0, x1, y1 = sample.bbox
            panel |= {"characters": [{"name": story.character.kind, "box": [x0 / w, y0 / h, x1 / w, y1 / h]}]}
        elif placed == "mask":
            mask = f"masks/{i:02d}.png"
            save_png(Image.fromarray(sample.masks["character"].astype(np.uint8) * 255, "L"), folder / mask)
            panel |= {"characters": [{"name": story.character.kind, "mask": mask}]}
        if placed:
            panel["setting"] = sample.scene.setting
        panels.append(panel)
    doc = {"schema": "sketchstory/story", "version": 2 if placed else 1, "title": title, "panels": panels,
           "settings": settings or {"model": "demo", "width": 64, "height": 64, "steps": 20,
                                    "guidance_scale": 4.0}}
    if placed:
        doc["characters"] = [{"name": story.character.kind}]
    return atomic_write_text(folder / "story.json", json.dumps(doc, indent=2) + "\n")


def write_duo_folder(folder: Path, story: duo.DuoStory, *, title: str, placed: bool,
                     references: dict[int, np.ndarray] | None = None, settings: dict | None = None,
                     first_seed: int = 1000) -> Path:
    """Write a two-character story: ``placed``, as story format 2 (each panel's characters with their boxes
    from the drawing, and its setting), so MAGA routes by character; else as version 1 with the same
    prompts, sketches and seeds (one shared memory). ``references``: a picture per character (pair index)."""
    folder = Path(folder)
    names = [c.kind for c in story.pair]  # a pair's kinds differ
    characters = []
    for i, name in enumerate(names):
        character: dict = {"name": name}
        if references is not None and i in references:
            character["reference"] = f"references/{name}.png"
            save_png(Image.fromarray(references[i], "RGB"), folder / character["reference"])
        characters.append(character)
    panels = []
    for i, panel in enumerate(story.panels):
        rel = f"sketches/{i:02d}.png"
        save_png(Image.fromarray(panel.sketch, "L"), folder / rel)
        doc_panel: dict = {"prompt": panel.caption, "sketch": rel, "seed": first_seed + i}
        if placed:
            doc_panel["characters"] = [{"name": names[c], "box": list(panel.box_fraction(c))} for c in panel.who]
            doc_panel["setting"] = panel.setting
        panels.append(doc_panel)
    doc = {"schema": "sketchstory/story", "version": 2 if placed else 1, "title": title, "panels": panels,
           "settings": settings or {"model": "demo", "width": 64, "height": 64, "steps": 20, "guidance_scale": 4.0}}
    if placed:
        doc["characters"] = characters
    return atomic_write_text(folder / "story.json", json.dumps(doc, indent=2) + "\n")


def write_examples(root: Path) -> list[Path]:
    """The shipped examples: the wizard story for the demo model and for SD1.5 at 512 px."""
    demo, captions = wizard_story(64)
    real, _ = wizard_story(512)
    # As a story is written: the first panel says the robe's colour, the later ones "the wizard".
    prompts = [demo.panels[0].caption] + [p.scene.describe(colour=False) for p in demo.panels[1:]]
    return [
        write_story_folder(root / "wizard", demo, title="The wizard and the crystal", captions=captions,
                           prompts=prompts),
        write_story_folder(
            root / "wizard-sd15", real, title="The wizard and the crystal (thesis Fig. 4.3)", prompts=captions,
            settings={"model": "sd15", "width": 512, "height": 512, "steps": 30, "guidance_scale": 7.5},
        ),
    ]


def write_benchmark(root: Path, count: int = 20, panels: int = 4, seed: int = 0) -> list[Path]:
    """``count`` world stories of ``panels`` panels each, for the consistency measure."""
    return [
        write_story_folder(root / f"story_{k:02d}", world.make_story(seed + k, panels), title=f"benchmark story {k}")
        for k in range(count)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write demo story folders from the toy world")
    parser.add_argument("what", choices=["examples", "benchmark"])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=20, help="benchmark: number of stories")
    parser.add_argument("--seed", type=int, default=0, help="benchmark: first world seed")
    args = parser.parse_args(argv)
    paths = write_examples(args.out) if args.what == "examples" else write_benchmark(args.out, args.count, seed=args.seed)
    print("\n".join(map(str, paths)))


if __name__ == "__main__":
    main()
