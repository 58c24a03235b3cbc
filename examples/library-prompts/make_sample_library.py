"""Write ``examples/library`` from the toy world's own renderer, without any model.

    python examples/library-prompts/make_sample_library.py [LIBRARY]

Each prompt of ``sample.json`` is drawn by ``sketchstory.demo.world`` (the procedural renderer the
demo model learnt from) in ``CANDIDATES`` random layouts, where a stage-1 build would draw
``CANDIDATES`` seeds. The sketches are the ground truth the demo model imitates, not stage-1
output; ``source`` in the index says so. With the demo weights installed, the stage-1 library of
the same prompts is ``sketchstory library build examples/library-prompts/sample.json --model demo``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sample
from PIL import Image

from sketchstory.demo import world
from sketchstory.library import Library, Meta
from sketchstory.provenance import fingerprint

SIZE = 128
SOURCE = "sketchstory.demo.world renderer (toy-world ground truth, not stage 1)"


def sketch(scene: world.Scene) -> Image.Image:
    return Image.fromarray(world.render(scene, SIZE).sketch, mode="L")


def main(root: Path) -> None:
    added = 0
    with Library.writer(root, side=SIZE) as library, library.index.db:
        for name, tags, who, scenes in sample.STORIES:
            character = sample.character(*who)
            for i, (scene_name, place) in enumerate(scenes):
                for k in range(sample.CANDIDATES):
                    layout = int(fingerprint([name, i, k]), 16) % 2**31
                    scene = sample.scene(character, place, "a" if i == 0 else "the", layout)
                    meta = Meta("story", scene.caption, tuple(tags), story=name, scene=scene_name, scene_index=i,
                                candidate=k, seed=layout, source=SOURCE)
                    added += not library.add(sketch(scene), meta).duplicate
        for category, items in sample.OBJECTS.items():
            for n, (who, place) in enumerate(items):
                layout = int(fingerprint([category, n]), 16) % 2**31
                scene = sample.scene(sample.character(*who), place, "a", layout)
                meta = Meta("sundry", scene.caption, (who[0],), category=category, candidate=0, seed=layout,
                            source=SOURCE)
                added += not library.add(sketch(scene), meta).duplicate
    print(f"{added} sketch(es) added to {root}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "library")
