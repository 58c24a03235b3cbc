"""Two characters: does routed MAGA keep each one's unspoken colours, and apart from the other's?

Held-out two-character stories of the toy world (``duo.py``: characters come and go, settings
differ between panels), each rendered with the demo model through the ordinary runner in four
configurations with the same prompts, sketches and seeds: no MAGA; one shared memory (story
format 1, no placements); routed MAGA (format 2: each panel's characters with their boxes from the
drawing, and its setting); routed with a reference picture per character (a world-drawn portrait,
its anchor memory). Captions say each character's body colour, never its hidden parts' colours.

Metrics per story, read back at the world's masks (``consistency.part_colour``), paired across
configurations with 95 % bootstrap intervals (``study.paired_difference``):

- ``own_de``: Delta E of each character's hidden parts in its later panels to the same parts in its
  first panel (its anchor), mean over characters, panels and parts;
- ``mixing``: the share of those readings that show the other character's colours: nearer to one of
  the other's hidden colours at its anchor than to the own anchor's, and within the consistency
  threshold of it (the pair's true hidden colours are apart, so this is not chance agreement of
  the world's drawing, but chance draws of the model still count; no MAGA measures that floor);
- diagnostics, None in a story without such panels: ``own_de_alone`` / ``own_de_together``,
  ``own_de`` over the later panels where the character is alone / beside the other; and
  ``own_de_anchor_alone`` / ``own_de_anchor_together``, over the characters whose first panel shows
  them alone (drawn large) / beside the other (drawn smaller);
- ``ref_de``: Delta E of the hidden parts in every panel to their true colours, which the reference
  portrait shows;
- ``background_de``: Delta E of the background to the panel's own scene drawn by the world, for
  panels whose setting differs from panel 0's (background melt, thesis Fig. 6.2).

The demo model saw two characters in a picture only in its last training segment (15 % of its pages),
which the results must be read with.

    python -m sketchstory.demo.study_characters --stories 32 -o out/study-characters
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from sketchstory.atomic import atomic_write_text
from sketchstory.demo import duo
from sketchstory.demo.consistency import DEFAULT_THRESHOLD, part_colour
from sketchstory.demo.gate import model_spec
from sketchstory.demo.stories import write_duo_folder
from sketchstory.demo.study import PALETTE_LAB, checked_gate, first_panel_seed, paired_difference, study_arguments
from sketchstory.models import Components, load
from sketchstory.models.specs import native_settings
from sketchstory.pipeline.runner import RunOptions, generate, panel_path
from sketchstory.story import load_story

# Batched renders the same images as sequential (tested), in about half the time.
BASE = {"model": "demo", "width": 64, "height": 64, "steps": 20, "guidance_scale": 4.0, "mode": "batched"}
# MAGA as the demo model's defaults give it (models.specs): a story with placed characters (routed) gets
# the model's routed settings over its plain ones, so "routed" is what a user placing characters gets.
CONFIGS: dict[str, dict] = {  # placed: story format 2 (routed); references: a portrait per character
    "no MAGA": {"maga": {"enabled": False}, "placed": False, "references": False},
    "shared memory": {"maga": {}, "placed": False, "references": False},
    "routed": {"maga": {}, "placed": True, "references": False},
    "routed + reference": {"maga": {}, "placed": True, "references": True},
    "routed, memory not guided": {"maga": {"memory_guidance": 0.0}, "placed": True, "references": False},
}
COLUMNS = (("mixing", "identity mixing", "{:.3f}"), ("own_de", "own hidden Delta E to anchor", "{:.1f}"),
           ("ref_de", "hidden Delta E to reference", "{:.1f}"), ("background_de", "background error", "{:.1f}"))


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def story_metrics(images: list[np.ndarray], story: duo.DuoStory,
                  threshold: float = DEFAULT_THRESHOLD) -> dict[str, float | None]:
    """The module's metrics for one story's generated ``images`` (HxWx3 uint8 RGB, one per panel)."""
    def colours(character: int, n: int) -> dict[str, np.ndarray]:
        panel = story.panels[n]
        masks = panel.masks[panel.of(character)]
        return {part: part_colour(images[n], masks[part]) for part in story.pair[character].hidden}

    anchors = {c: colours(c, story.appearances(c)[0]) for c in (0, 1)}
    own, mixed, ref = [], [], []
    # (which panel, alone in it?): the later panel's or the anchor's
    own_by: dict[tuple[str, bool], list[float]] = {(w, a): [] for w in ("", "anchor_") for a in (True, False)}
    for c, character in enumerate(story.pair):
        others = list(anchors[1 - c].values())
        for k, n in enumerate(story.appearances(c)):
            for part, lab in colours(c, n).items():
                ref.append(float(np.linalg.norm(lab - PALETTE_LAB[character.hidden[part]])))
                if k == 0:
                    continue
                d_own = float(np.linalg.norm(lab - anchors[c][part]))
                d_other = min(float(np.linalg.norm(lab - o)) for o in others)
                own.append(d_own)
                own_by["", len(story.panels[n].who) == 1].append(d_own)
                own_by["anchor_", len(story.panels[story.appearances(c)[0]].who) == 1].append(d_own)
                mixed.append(float(d_other < d_own and d_other <= threshold))
    out: dict[str, float | None] = {"mixing": float(np.mean(mixed)), "own_de": float(np.mean(own)),
                                    "ref_de": float(np.mean(ref))}
    out |= {f"own_de_{which}{'alone' if alone else 'together'}": float(np.mean(v)) if v else None
            for (which, alone), v in own_by.items()}
    errors = []
    for img, p in zip(images[1:], story.panels[1:], strict=True):
        if p.setting != story.panels[0].setting:
            background = ~cv2.dilate((~p.background).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            errors.append(float(np.linalg.norm(_lab(img) - _lab(p.image), axis=2)[background].mean()))
    if errors:
        out["background_de"] = float(np.mean(errors))
    return out


def render(components: Components, folder: Path, story: duo.DuoStory, config: dict, seed: int) -> list[np.ndarray]:
    references = {c: duo.portrait(ch, seed).image for c, ch in enumerate(story.pair)} if config["references"] else None
    path = write_duo_folder(folder, story, title=folder.name, placed=config["placed"], references=references,
                            settings=BASE | {"maga": config["maga"]}, first_seed=first_panel_seed(seed))
    generate(load_story(path), folder, folder / "out", RunOptions(progress=False), components)
    return [np.asarray(Image.open(panel_path(folder / "out", n)).convert("RGB")) for n in range(len(story.panels))]


def run_study(components: Components, n_stories: int, n_panels: int, seed: int, configs: dict[str, dict],
              log=print) -> dict:
    stories = [duo.make_duo_story(seed + k, n_panels) for k in range(n_stories)]
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c, (name, config) in enumerate(configs.items()):
            t0 = time.perf_counter()
            per_story: dict[str, list[float]] = {}
            for k, story in enumerate(stories):
                images = render(components, Path(tmp) / f"{k:02d}-{c}", story, config, seed + k)
                for key, value in story_metrics(images, story).items():
                    per_story.setdefault(key, []).append(value)
            results[name] = per_story
            log(f"{name:20} mixing {np.mean(per_story['mixing']):.3f}, own Delta E {np.mean(per_story['own_de']):5.1f}, "
                f"to reference {np.mean(per_story['ref_de']):5.1f} ({time.perf_counter() - t0:.0f} s)")
    return {"stories": n_stories, "panels": n_panels, "seed": seed, "settings": BASE,
            "maga": {kind: {k: v for k, v in native_settings("demo", kind == "routed").items() if k.startswith("maga.")}
                     for kind in ("plain", "routed")},
            "results": results}


def _cell(values: list[float], base: list[float] | None, fmt: str) -> str:
    cell = fmt.format(np.mean(values))
    if base is not None:
        d, lo, hi = paired_difference(values, base)
        f = "{:+" + fmt[2:]
        cell += f" ({f.format(d)} [{f.format(lo)}, {f.format(hi)}])"
    return cell


def _split_line(routed: list[float | None], base: list[float | None], where: str) -> str:
    """Routed own Delta E over ``where`` (a part of the readings), in the stories that have such readings."""
    kept = [(r, b) for r, b in zip(routed, base, strict=True) if r is not None and b is not None]
    if len(kept) < 2:
        return f"- routed own Delta E, {where}: too few stories with such panels"
    r, b = map(list, zip(*kept, strict=True))
    d, lo, hi = paired_difference(r, b)
    return (f"- routed own Delta E, {where} ({len(kept)} stories): {np.mean(b):.1f} -> "
            f"{np.mean(r):.1f}, {d:+.1f} [{lo:+.1f}, {hi:+.1f}], {100 * (1 - np.mean(r) / np.mean(b)):.0f} % below")


def table(study: dict, baseline: str = "no MAGA") -> str:
    """Means per configuration with the paired difference to ``baseline`` [95 % CI], then the issue's targets."""
    results = study["results"]
    lines = [f"{study['stories']} held-out two-character stories x {study['panels']} panels (seeds from {study['seed']}); "
             f"differences to {baseline}, paired per story [95 % bootstrap CI]", "",
             "| configuration | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    base = results.get(baseline)
    for name, r in results.items():
        cells = [_cell(r[key], None if name == baseline or base is None else base[key], fmt) if key in r else "-"
                 for key, _, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if base is not None and "routed" in results:
        routed = results["routed"]
        d, lo, hi = paired_difference(routed["mixing"], base["mixing"])
        lines += ["", f"- routed mixing - {baseline}'s: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (target: at or below 0)"]
        drop = 1 - np.mean(routed["own_de"]) / np.mean(base["own_de"])
        lines.append(f"- routed own Delta E to anchor: {100 * drop:.0f} % below {baseline}'s (target: >= 40 %)")
        if "shared memory" in results:
            d, lo, hi = paired_difference(routed["mixing"], results["shared memory"]["mixing"])
            lines.append(f"- routed mixing - shared memory's: {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        if "routed + reference" in results:
            d, lo, hi = paired_difference(results["routed + reference"]["ref_de"], routed["ref_de"])
            lines.append(f"- with reference - routed, Delta E to the reference: {d:+.1f} [{lo:+.1f}, {hi:+.1f}]")
        for key, where in (("own_de_alone", "later panels with the character alone"),
                           ("own_de_together", "later panels with the character beside the other"),
                           ("own_de_anchor_alone", "characters first shown alone"),
                           ("own_de_anchor_together", "characters first shown beside the other")):
            if key in routed and key in base:
                lines.append(_split_line(routed[key], base[key], where))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    log = partial(print, flush=True)
    parser = argparse.ArgumentParser(prog="python -m sketchstory.demo.study_characters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    study_arguments(parser, CONFIGS, stories=32)
    parser.add_argument("-o", "--out", type=Path, default=Path("out/study-characters"))
    args = parser.parse_args(argv)
    components = load(model_spec(args.weights))
    if (gate := checked_gate(components, args, log)) is None:
        return 1
    configs = {k: CONFIGS[k] for k in args.configs} if args.configs else CONFIGS
    t0 = time.perf_counter()
    study = run_study(components, args.stories, args.panels, args.seed, configs, log)
    study["seconds"], study["gate"] = round(time.perf_counter() - t0), gate
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "study-characters.json", json.dumps(study, indent=2) + "\n")
    atomic_write_text(args.out / "study-characters.md", table(study) + "\n")
    print(table(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
