"""Write the two shipped prompts files from the lists beside this script.

    python examples/library-prompts/make_prompts.py

- ``thesis.json``: the thesis-sized build (SketchXL): 50 stories x 4 scenes x 80 candidates and
  1,000 sundry objects in 25 categories, one sketch each: 17,000 sketches. For a GPU with SDXL:
  ``sketchstory library build examples/library-prompts/thesis.json --model sdxl``.
- ``sample.json``: the small sample library in ``examples/library``, in the words the bundled demo
  model was trained on (its toy world: four characters, four settings, three poses).
"""

from __future__ import annotations

import json
from pathlib import Path

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


def sample() -> dict:
    stories = [
        ("The wizard's walk", ["wizard"], "wizard in a blue robe",
         [("forest", "standing in a forest, on the left"), ("castle", "walking in front of a castle, in the middle"),
          ("sea", "jumping by the sea, on the right"), ("night", "standing under the night sky, in the middle")]),
        ("The knight at the sea", ["knight"], "knight in red armour",
         [("castle", "standing in front of a castle, on the right"), ("forest", "walking in a forest, on the left"),
          ("shore", "walking by the sea, in the middle"), ("leap", "jumping by the sea, on the right")]),
        ("The cat's night out", ["cat"], "white cat",
         [("forest", "walking in a forest, in the middle"), ("castle", "jumping in front of a castle, on the left"),
          ("night", "walking under the night sky, on the right"), ("home", "standing in a forest, on the left")]),
    ]
    out = []
    for name, tags, who, scenes in stories:
        out.append({"name": name, "tags": tags, "scenes": [
            {"name": scene, "prompt": f"{'a' if i == 0 else 'the'} {who} {what}"}
            for i, (scene, what) in enumerate(scenes)]})
    sundry = {
        "robots": ["a green robot standing in a forest, in the middle", "a purple robot jumping by the sea, on the left",
                   "a yellow robot walking in front of a castle, on the right"],
        "cats": ["a red cat standing under the night sky, in the middle", "a blue cat jumping in a forest, on the right"],
        "knights": ["a knight in yellow armour walking under the night sky, in the middle"],
        "wizards": ["a wizard in a purple robe jumping in a forest, in the middle",
                    "a wizard in a white robe standing by the sea, on the left"],
    }
    return HEADER | {"candidates": 3, "sundry_candidates": 1, "seed": 0, "stories": out, "sundry": sundry}


def main() -> None:
    for name, doc in (("thesis.json", thesis()), ("sample.json", sample())):
        (HERE / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
