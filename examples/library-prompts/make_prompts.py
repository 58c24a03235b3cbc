"""Write the two shipped prompts files from the lists beside this script.

    python examples/library-prompts/make_prompts.py

- ``thesis.json``: the thesis-sized build (SketchXL): 50 stories x 4 scenes x 80 candidates and
  1,000 sundry objects in 25 categories, one sketch each: 17,000 sketches. For a GPU with SDXL:
  ``sketchstory library build examples/library-prompts/thesis.json --model sdxl``.
- ``sample.json``: the small sample library's (``sample.py``), in the words the bundled demo
  model was trained on (its toy world: four characters, four settings, three poses).
"""

from __future__ import annotations

import json
from pathlib import Path

import sample
from objects import OBJECTS
from stories import STORIES

HERE = Path(__file__).parent
HEADER = {"schema": "sketchstory/library-prompts", "version": 1}


def article(item: str) -> str:
    if item.startswith(("a ", "an ", "a pair", "the ")):
        return item
    return ("an " if item[0] in "aeiou" else "a ") + item


def thesis() -> dict:
    stories = [{"name": name, "tags": tags, "scenes": [{"name": s, "prompt": p} for s, p in scenes]}
               for name, tags, scenes in STORIES]
    sundry = {category: [article(item) for item in items] for category, items in OBJECTS.items()}
    return HEADER | {"candidates": 80, "sundry_candidates": 1, "seed": 0, "stories": stories, "sundry": sundry}


def sample_prompts() -> dict:
    stories = []
    for name, tags, (kind, colour), scenes in sample.STORIES:
        who = sample.character(kind, colour)
        stories.append({"name": name, "tags": tags, "scenes": [
            {"name": scene_name, "prompt": sample.scene(who, place, "a" if i == 0 else "the", 0).caption}
            for i, (scene_name, place) in enumerate(scenes)]})
    sundry = {category: [sample.scene(sample.character(*who), place, "a", 0).caption for who, place in items]
              for category, items in sample.OBJECTS.items()}
    return HEADER | {"candidates": sample.CANDIDATES, "sundry_candidates": 1, "seed": 0, "stories": stories,
                     "sundry": sundry}


def main() -> None:
    for name, doc in (("thesis.json", thesis()), ("sample.json", sample_prompts())):
        (HERE / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
