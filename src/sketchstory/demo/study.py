"""Does MAGA keep the unspoken attributes consistent? The toy-world study of issue 5.

For each of N world stories (one character, hidden colours never said in the captions), every
configuration renders the story with the demo model through the ordinary runner, and
``hidden_consistency`` reads the hidden parts' colours back at the character's known location.
Without a memory, a hidden part matches panel 0 only by chance (about 1 in 6 per part); a working
memory raises that share.

    python -m sketchstory.demo.study --stories 20 -o out/study
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from sketchstory.atomic import atomic_write_text
from sketchstory.demo import world
from sketchstory.demo.consistency import hidden_consistency
from sketchstory.demo.stories import write_story_folder
from sketchstory.models import Components, load, resolve_spec
from sketchstory.pipeline.runner import RunOptions, generate, panel_path
from sketchstory.story import parse_story

BASE = {"model": "demo", "width": 64, "height": 64, "steps": 20, "guidance_scale": 4.0}
CONFIGS: dict[str, dict] = {
    "no MAGA": {"maga": {"enabled": False}},
    "MAGA thesis (all, layer 8, step 24/50)": {"maga": {"memory": "all"}},
    "MAGA default (anchors:0+window:2)": {},
    "MAGA default, batched": {"mode": "batched"},
    "MAGA early (layer 4, step 5/50)": {"maga": {"start_layer": 4, "start_step": "5/50"}},
    "MAGA everywhere (layer 0, step 0)": {"maga": {"start_layer": 0, "start_step": 0}},
}


def render(components: Components, folder: Path, story: world.Story, overrides: dict) -> list[np.ndarray]:
    path = write_story_folder(folder, story, title=folder.name)
    doc = json.loads(path.read_text())
    doc["settings"] = BASE | overrides
    parsed = parse_story(doc, str(path))
    generate(parsed, folder, folder / "out", RunOptions(progress=False), components)
    return [np.asarray(Image.open(panel_path(folder / "out", n)).convert("RGB")) for n in range(len(story.panels))]


def run_study(n_stories: int, n_panels: int, seed: int, configs: dict[str, dict], log=print) -> dict:
    components = load(resolve_spec("demo"))
    stories = [world.make_story(seed + k, n_panels) for k in range(n_stories)]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in configs.items():
            t0 = time.perf_counter()
            scores, delta_e = [], []
            for k, story in enumerate(stories):
                images = render(components, Path(tmp) / f"{k:02d}-{len(results)}", story, overrides)
                result = hidden_consistency(images, [p.hidden_masks for p in story.panels])
                scores.append(result.score)
                # The graded view: how far the hidden colours drift from panel 0, whether or not they
                # cross the match threshold; a memory that pulls colours closer lowers it.
                delta_e.append(float(np.mean([d for ds in result.distances for d in ds.values()])))
            results[name] = {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "scores": scores,
                             "delta_e": delta_e, "seconds": round(time.perf_counter() - t0, 1)}
            log(f"{name:42} consistency {results[name]['mean']:.3f} +- {results[name]['std']:.3f}, "
                f"mean Delta E {np.mean(delta_e):.1f} ({results[name]['seconds']} s)")
    return {"stories": n_stories, "panels": n_panels, "seed": seed, "settings": BASE, "results": results}


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


def table(study: dict, baseline: str = "no MAGA") -> str:
    head = (f"Hidden-attribute consistency, {study['stories']} toy-world stories x {study['panels']} panels "
            "(share of panels 1..n-1 whose hidden colours match panel 0; chance ~ 1/36)")
    lines = [head, "", f"| configuration | consistency | std | difference to {baseline} [95 % CI] "
             f"| mean Delta E to panel 0 | difference to {baseline} [95 % CI] |", "|---|---|---|---|---|---|"]
    base = study["results"].get(baseline)
    for name, r in study["results"].items():
        cells = []
        for key, fmt in (("scores", "{:+.3f}"), ("delta_e", "{:+.1f}")):
            cells.append("—")
            if base is not None and name != baseline and key in r and key in base:
                d, lo, hi = paired_difference(r[key], base[key])
                cells[-1] = f"{fmt.format(d)} [{fmt.format(lo)}, {fmt.format(hi)}]"
        delta_e = f"{np.mean(r['delta_e']):.1f}" if "delta_e" in r else "—"
        lines.append(f"| {name} | {r['mean']:.3f} | {r['std']:.3f} | {cells[0]} | {delta_e} | {cells[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    log = partial(print, flush=True)
    parser = argparse.ArgumentParser(description="MAGA consistency study on the demo model's toy world")
    parser.add_argument("--stories", type=int, default=20)
    parser.add_argument("--panels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=100, help="first world story seed")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), help="a subset of the configurations")
    parser.add_argument("-o", "--out", type=Path, default=Path("out/study"))
    args = parser.parse_args(argv)
    configs = {k: CONFIGS[k] for k in args.configs} if args.configs else CONFIGS
    study = run_study(args.stories, args.panels, args.seed, configs, log)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "study.json", json.dumps(study, indent=2) + "\n")
    atomic_write_text(args.out / "study.md", table(study) + "\n")
    print(table(study))


if __name__ == "__main__":
    main()
