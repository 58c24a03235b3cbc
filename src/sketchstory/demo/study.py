"""Does MAGA keep what a story does not say the same across its panels? The toy-world study.

Held-out world stories of one character; every configuration renders the same stories with the
demo model through the ordinary runner, and the colours are read back at the character's known
masks (``consistency.py``). Panels 1.. never say the body colour and no caption says the hidden
parts' colours, so without a memory they match panel 0 only by chance. Designs:

- ``diffsk`` (main): one prompt for every panel (panel 0's caption, body colour unsaid) and
  different sketches of the character in that setting (pose, position, size, props differ);
- ``same``: one prompt, one sketch, different seeds;
- ``story``: as a user writes a story: each panel its own scene (settings differ), panel 0 says
  the body colour, the others say "the wizard"; measures spoken colours and background melt too.

Metrics per story (paired across configurations, 95 % bootstrap intervals): Delta E of the
unspoken attributes (body and hidden parts) of panels 1.. to panel 0 (main), body and hidden
parts apart, the exact-colour consistency score (``hidden_consistency``), sketch F1, spoken-colour
accuracy (``story``: panel 0's body is nearest to the said palette colour) and background error
(``story``: Delta E of the background to the panel's own scene drawn by the world, for panels
whose setting differs from panel 0's; a memory that melts backgrounds raises it).

    python -m sketchstory.demo.study --design diffsk --stories 48 -o out/study

The gate (``gate.py``) runs first; if it fails the study does not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from sketchstory.atomic import atomic_path, atomic_write_text
from sketchstory.demo import world
from sketchstory.demo.consistency import hidden_consistency, part_colour
from sketchstory.demo.data import control_image
from sketchstory.demo.gate import describe, model_spec, run_gate
from sketchstory.demo.stories import write_story_folder
from sketchstory.eval.ablation import compose_grid
from sketchstory.eval.edges import edge_agreement, edge_map
from sketchstory.models import DEMO_DIR, Components, load
from sketchstory.pipeline.runner import RunOptions, generate, panel_path
from sketchstory.story import parse_story

# Batched renders the same images as sequential (tested in test_maga.py), in about half the time.
BASE = {"model": "demo", "width": 64, "height": 64, "steps": 20, "guidance_scale": 4.0, "mode": "batched"}
# "MAGA defaults" are the model's (models.specs; the demo model's: layer 0, step 0, anchors:0, gain 1,
# memory guidance 1, subject mask); the thesis's own configurations have no gain, both guidance branches
# reading the memory, and share the whole picture.
PLAIN = {"gain": 0.0, "memory_guidance": 0.0, "subject_mask": False}
CONFIGS: dict[str, dict] = {
    "no MAGA": {"maga": {"enabled": False}},
    "MAGA defaults": {},
    "MAGA thesis (all, layer 8, step 24/50)": {"maga": PLAIN | {"memory": "all", "start_layer": 8, "start_step": "24/50"}},
    "MAGA early (layer 4, step 5/50)": {"maga": PLAIN | {"start_layer": 4, "start_step": "5/50"}},
    "MAGA everywhere (layer 0, step 0)": {"maga": PLAIN | {"start_layer": 0, "start_step": 0}},
    "MAGA defaults, no subject mask": {"maga": {"subject_mask": False}},
    "MAGA defaults, memory not guided": {"maga": {"memory_guidance": 0.0}},
    "MAGA defaults, gain 2": {"maga": {"gain": 2.0}},
    # Story format 2: the character placed with its box in every panel, and the panel's setting (routed MAGA,
    # which takes the model's routed defaults: on the demo model, from layer 5).
    "MAGA defaults, character placed": {"placed": "box"},
    "character placed, memory not guided": {"placed": "box", "maga": {"memory_guidance": 0.0}},
    "MAGA defaults, lambda 1": {"maga": {"strength": 1.0}},
    "MAGA defaults, lambda 3": {"maga": {"strength": 3.0}},
}
DESIGNS = ("diffsk", "same", "story")
PALETTE_LAB = {name: cv2.cvtColor(np.float32(rgb)[None, None] / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
               for name, rgb in world.COLOURS.items()}


def design_story(design: str, seed: int, n_panels: int) -> tuple[world.Story, list[str]]:
    """The panels (world samples: sketches, masks, clean pictures) and prompts of one study story."""
    story = world.make_story(seed, n_panels)
    first = story.panels[0]
    if design == "story":
        prompts = [first.caption] + [p.scene.describe(colour=False) for p in story.panels[1:]]
        return story, prompts
    prompt = first.scene.describe(colour=False)
    if design == "same":
        return world.Story(story.character, (first,) * n_panels), [prompt] * n_panels
    if design == "diffsk":
        scenes = [first.scene] + [replace(p.scene, setting=first.scene.setting) for p in story.panels[1:]]
        return world.Story(story.character, tuple(world.render(s) for s in scenes)), [prompt] * n_panels
    raise ValueError(f"unknown design {design!r}; choose one of {DESIGNS}")


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def story_metrics(images: list[np.ndarray], story: world.Story, design: str) -> dict[str, float]:
    panels = story.panels
    body0 = part_colour(images[0], panels[0].masks["body"])
    body = [float(np.linalg.norm(part_colour(img, p.masks["body"]) - body0)) for img, p in zip(images[1:], panels[1:])]
    consistency = hidden_consistency(images, [p.hidden_masks for p in panels])
    hidden = [float(np.mean(list(d.values()))) for d in consistency.distances]
    f1 = [edge_agreement(edge_map(Image.fromarray(img)), control_image(p.sketch)[..., 0] > 127).f1
          for img, p in zip(images, panels)]
    out = {"unspoken_de": float(np.mean([(b + 2 * h) / 3 for b, h in zip(body, hidden)])),
           "body_de": float(np.mean(body)), "hidden_de": float(np.mean(hidden)), "score": consistency.score,
           "f1": float(np.mean(f1))}
    if design == "story":
        said = story.character.colour
        nearest = min(PALETTE_LAB, key=lambda c: float(np.linalg.norm(PALETTE_LAB[c] - body0)))
        out["spoken"] = float(nearest == said)
        errors = []
        for img, p in zip(images[1:], panels[1:]):
            if p.scene.setting != panels[0].scene.setting:
                background = ~cv2.dilate(p.masks["character"].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                errors.append(float(np.linalg.norm(_lab(img) - _lab(p.image), axis=2)[background].mean()))
        if errors:
            out["background_de"] = float(np.mean(errors))
    return out


def first_panel_seed(story_seed: int) -> int:
    """The seed of a study story's panel 0 (panel i: this + i): every story starts from its own noise. (With one
    seed for all, every story shared its starting noise, and the study measured that noise as much as MAGA.)"""
    return 10 * story_seed


def render(components: Components, folder: Path, story: world.Story, prompts: list[str], overrides: dict,
           first_seed: int) -> list[np.ndarray]:
    overrides = dict(overrides)
    placed = overrides.pop("placed", None)
    path = write_story_folder(folder, story, title=folder.name, prompts=prompts, placed=placed, first_seed=first_seed)
    doc = json.loads(path.read_text())
    doc["settings"] = BASE | overrides
    generate(parse_story(doc, str(path)), folder, folder / "out", RunOptions(progress=False), components)
    return [np.asarray(Image.open(panel_path(folder / "out", n)).convert("RGB")) for n in range(len(story.panels))]


def run_study(components: Components, design: str, n_stories: int, n_panels: int, seed: int,
              configs: dict[str, dict], log=print) -> dict:
    stories = [design_story(design, seed + k, n_panels) for k in range(n_stories)]
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c, (name, overrides) in enumerate(configs.items()):
            t0 = time.perf_counter()
            per_story: dict[str, list[float]] = {}
            for k, (story, prompts) in enumerate(stories):
                images = render(components, Path(tmp) / f"{k:02d}-{c}", story, prompts, overrides,
                                first_panel_seed(seed + k))
                for key, value in story_metrics(images, story, design).items():
                    per_story.setdefault(key, []).append(value)
            results[name] = per_story
            log(f"{design} | {name:40} unspoken Delta E {np.mean(per_story['unspoken_de']):5.1f}, "
                f"score {np.mean(per_story['score']):.3f}, F1 {np.mean(per_story['f1']):.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    return {"design": design, "stories": n_stories, "panels": n_panels, "seed": seed, "settings": BASE,
            "results": results}


def paired_difference(scores: list[float], baseline: list[float], draws: int = 10_000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean per-story difference to the baseline and its 95 % paired-bootstrap interval.

    The configurations render the same stories, so the paired difference removes the stories'
    own difficulty; an interval that contains 0 means the study cannot tell the two apart.
    """
    diff = np.asarray(scores, dtype=float) - np.asarray(baseline, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (draws, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


COLUMNS = (("unspoken_de", "unspoken Delta E", "{:.1f}"), ("body_de", "body", "{:.1f}"),
           ("hidden_de", "hidden parts", "{:.1f}"), ("score", "consistency", "{:.3f}"), ("f1", "sketch F1", "{:.3f}"),
           ("spoken", "spoken colour", "{:.2f}"), ("background_de", "background error", "{:.1f}"))


def table(study: dict, baseline: str = "no MAGA") -> str:
    """Means per configuration; under each, the paired difference to the baseline [95 % CI]."""
    results = study["results"]
    columns = [c for c in COLUMNS if all(c[0] in r for r in results.values())]
    lines = [f"Design `{study['design']}`, {study['stories']} held-out stories x {study['panels']} panels "
             f"(differences to {baseline}, paired per story, [95 % bootstrap CI]; unspoken Delta E: relative change too)",
             "", "| configuration | " + " | ".join(c[1] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    base = results.get(baseline)
    for name, r in results.items():
        cells = []
        for key, _, fmt in columns:
            cell = fmt.format(np.mean(r[key]))
            if base is not None and name != baseline:
                d, lo, hi = paired_difference(r[key], base[key])
                f = "{:+" + fmt[2:]
                cell += f" ({f.format(d)} [{f.format(lo)}, {f.format(hi)}]"
                if key == "unspoken_de":
                    cell += f", {100 * d / np.mean(base[key]):+.0f} %"
                cell += ")"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def without_and_with_maga(components: Components, story_file: Path) -> list[list[Image.Image]]:
    """The story's panels rendered with MAGA off, then with the story's own MAGA settings."""
    doc = json.loads(story_file.read_text())
    settings = doc.get("settings", {})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c, name in enumerate(("no MAGA", "MAGA defaults")):
            doc["settings"] = settings | CONFIGS[name]  # each row from the story's own settings
            run = Path(tmp) / str(c)
            generate(parse_story(doc, str(story_file)), story_file.parent, run, RunOptions(progress=False), components)
            rows.append([Image.open(panel_path(run, n)).convert("RGB") for n in range(len(doc["panels"]))])
    return rows


def figure(components: Components, story_file: Path, out: Path) -> Path:
    """A story rendered without and with MAGA, a row each: the README's first picture."""
    rows = without_and_with_maga(components, story_file)
    title = json.loads(story_file.read_text()).get("title", story_file.parent.name)
    grid = compose_grid([[row] for row in rows], ["without MAGA", "with MAGA"], [title])
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp_png:
        grid.save(tmp_png, format="PNG")
    return out


def study_arguments(parser: argparse.ArgumentParser, configs: dict[str, dict], stories: int) -> None:
    """The options every demo study takes: which held-out stories, configurations and weights, and the gate."""
    parser.add_argument("--stories", type=int, default=stories)
    parser.add_argument("--panels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1_000_000,
                        help="first world story seed (held out: training uses stories below 10^6)")
    parser.add_argument("--configs", nargs="+", choices=list(configs), help="a subset of the configurations")
    parser.add_argument("--weights", type=Path, default=DEMO_DIR, help="a demo model folder (default: the shipped one)")
    parser.add_argument("--skip-gate", action="store_true", help="run even if the gate fails (to study why)")


def checked_gate(components: Components, args: argparse.Namespace, log=print) -> dict | None:
    """The gate, run first: None when it fails (and ``--skip-gate`` is not given), since a study of a model
    whose self-attention carries no appearance measures nothing."""
    gate = run_gate(components)
    log(describe(gate))
    if not gate["passed"] and not args.skip_gate:
        log("the study does not run: this model's self-attention does not carry appearance (see the gate above)")
        return None
    return gate


def main(argv: list[str] | None = None) -> int:
    log = partial(print, flush=True)
    parser = argparse.ArgumentParser(prog="python -m sketchstory.demo.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", choices=DESIGNS, default="diffsk")
    study_arguments(parser, CONFIGS, stories=48)
    parser.add_argument("-o", "--out", type=Path, default=Path("out/study"))
    parser.add_argument("--figure", nargs=2, type=Path, metavar=("STORY", "PNG"),
                        help="only render STORY without and with MAGA into PNG (no gate, no study)")
    args = parser.parse_args(argv)
    components = load(model_spec(args.weights))
    if args.figure:
        print(figure(components, *args.figure))
        return 0
    if (gate := checked_gate(components, args, log)) is None:
        return 1
    configs = {k: CONFIGS[k] for k in args.configs} if args.configs else CONFIGS
    study = run_study(components, args.design, args.stories, args.panels, args.seed, configs, log) | {"gate": gate}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"study-{args.design}.json", json.dumps(study, indent=2) + "\n")
    atomic_write_text(args.out / f"study-{args.design}.md", table(study) + "\n")
    print(table(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
