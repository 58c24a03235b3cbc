"""What character routing costs: a two-character story routed by character against one shared memory.

The same story of the toy world's two-character stories (``demo.duo``) is rendered twice through
the runner, with the same prompts, sketches, seeds and MAGA settings: ``shared`` as story format 1
(no placements: one memory for the whole panel), ``routed`` as format 2 (each panel's characters
with their boxes, and its setting: one track per character and setting). Times are the process's
CPU time (run with ``OMP_NUM_THREADS=1`` on a shared machine), each row the median of ``repeats``
renders taken in turns, so load that drifts during the run falls on both. Rows in sequential mode
also give the memory bank's peak. Routed, each track (character or setting) holds at most its
policy's panels (the demo's ``anchors:0``: 1, and the one being written), so the bank is bounded by the
number of characters and settings, not by N; it keeps every token of a panel (the regions replace the
subject mask), shared memory only the subject's. Issue 18's target: routed per panel within 1.1x of shared.

    python -m sketchstory.bench.characters --arch demo tiny tiny-sdxl --panels 4 8 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sketchstory.attention.budget import kept_branches, layer_shapes, panel_bytes
from sketchstory.demo.duo import make_duo_story
from sketchstory.demo.stories import write_duo_folder
from sketchstory.models import REGISTRY, Components, load, resolve_spec
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story

TARGET = 1.1  # routed per-panel time / shared
STORY_SEED = 1_000_000
# Both rows with the demo model's plain MAGA defaults, given explicitly: a routed story would otherwise take the
# model's routed ones (a later start layer), and the ratio would measure those settings, not routing.
MAGA = dict(REGISTRY["demo"].maga)


def components_of(arch: str) -> Components:
    return load(resolve_spec("demo", None)) if arch == "demo" else load(REGISTRY[arch])


def _render(components: Components, n_panels: int, size: int, steps: int, placed: bool, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"model": components.spec.name, "width": size, "height": size, "steps": steps,
                    "guidance_scale": 4.0, "mode": mode, "maga": MAGA}
        path = write_duo_folder(Path(tmp) / "story", make_duo_story(STORY_SEED, n_panels, size=max(size, 64)),
                                title="bench", placed=placed, settings=settings)
        c0 = time.process_time()
        info = generate(load_story(path), path.parent, Path(tmp) / "out", RunOptions(progress=False), components).info
        cpu = time.process_time() - c0
    c = components
    shapes = layer_shapes(c.unet, (size // c.vae_scale, size // c.vae_scale))
    kept = kept_branches(2, MAGA.get("memory_guidance", 0.0))  # guidance 4 runs both CFG branches
    one = panel_bytes(shapes, info["maga_first_layer"], steps - info["maga_start_step"], kept, c.dtype.itemsize,
                      info["maga_token_budget"])
    tracks = info["maga_routed_tracks"] or []
    return {"cpu_seconds": cpu, "bank_peak_bytes": info["memory_bank_peak_bytes"], "panel_bytes": one,
            "tracks": len(tracks), "characters": sum(kind == "character" for kind, _ in tracks)}


def bench(components: Components, panel_counts: list[int], size: int, steps: int, repeats: int,
          log: Callable[[str], object] = print) -> list[dict]:
    """Rows per mode and story length: shared and routed CPU seconds per panel (medians) and the bank."""
    _render(components, 3, size, steps, True, "sequential")  # warm-up: first calls and allocator
    rows = []
    for mode in ("sequential", "auto"):
        for n in panel_counts:
            runs: dict[str, list[dict]] = {"shared": [], "routed": []}
            for _ in range(repeats):
                for name in runs:
                    runs[name].append(_render(components, n, size, steps, name == "routed", mode))
            cpu = {name: statistics.median(r["cpu_seconds"] for r in rs) / n for name, rs in runs.items()}
            routed = runs["routed"][0]
            row = {"model": components.spec.name, "mode": mode, "panels": n, "size": size, "steps": steps,
                   "shared_cpu_per_panel": round(cpu["shared"], 4), "routed_cpu_per_panel": round(cpu["routed"], 4),
                   "ratio": round(cpu["routed"] / cpu["shared"], 3),
                   "shared_bank_peak_bytes": runs["shared"][0]["bank_peak_bytes"],
                   "routed_bank_peak_bytes": routed["bank_peak_bytes"], "panel_bytes": routed["panel_bytes"],
                   "tracks": routed["tracks"], "characters": routed["characters"]}
            rows.append(row)
            log(_line(row))
    return rows


def _line(r: dict) -> str:
    mib = 2**20
    return (f"{r['model']:9} {r['mode']:10} N={r['panels']:2d}  shared {r['shared_cpu_per_panel']:7.3f}  "
            f"routed {r['routed_cpu_per_panel']:7.3f} CPU s/panel  ratio {r['ratio']:.3f}  bank peak shared "
            f"{r['shared_bank_peak_bytes'] / mib:6.2f} / routed {r['routed_bank_peak_bytes'] / mib:6.2f} MiB "
            f"({r['routed_bank_peak_bytes'] / r['panel_bytes']:.0f} panels of {r['panel_bytes'] / mib:.2f} MiB, "
            f"{r['tracks']} tracks)")


def table(rows: list[dict]) -> str:
    lines = ["| model | mode | N | shared CPU s/panel | routed CPU s/panel | routed / shared | bank peak shared / routed "
             "(MiB) | routed: panels held | tracks (characters + settings) |", "|---" * 9 + "|"]
    for r in rows:
        held = r["routed_bank_peak_bytes"] / r["panel_bytes"]
        lines.append(f"| {r['model']} | {r['mode']} | {r['panels']} | {r['shared_cpu_per_panel']:.3f} | "
                     f"{r['routed_cpu_per_panel']:.3f} | {r['ratio']:.3f} | {r['shared_bank_peak_bytes'] / 2**20:.2f} / "
                     f"{r['routed_bank_peak_bytes'] / 2**20:.2f} | {held:.0f} | {r['tracks']} ({r['characters']} + "
                     f"{r['tracks'] - r['characters']}) |")
    worst = max(r["ratio"] for r in rows)
    mean = float(np.exp(np.mean(np.log([r["ratio"] for r in rows]))))  # a row's ratio moves +-10 % under load
    lines.append(f"\nrouted / shared: worst row {worst:.3f}, geometric mean {mean:.3f} (target <= {TARGET}: "
                 f"{'met' if worst <= TARGET else 'mean met' if mean <= TARGET else 'not met'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m sketchstory.bench.characters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["demo", "tiny", "tiny-sdxl"], choices=["demo", "tiny", "tiny-sdxl"])
    parser.add_argument("--panels", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = []
    with torch.inference_mode():
        for arch in args.arch:
            rows += bench(components_of(arch), args.panels, args.size, args.steps, args.repeats)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
