"""How time and memory grow with the number of panels: plain ControlNet vs MAGA, per mode and policy.

Every number comes from one process and one set of random weights, through the same runner a
user's ``generate`` goes through (decode and PNG writes included), so ratios between rows are
meaningful; absolute seconds are not comparable across machines. On CPU the ratios use the
process's CPU time (all its threads), which other load on a shared machine barely moves, where
wall time can swing by 2x between two rows; on a GPU they use wall time (the work is asynchronous).
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


from sketchstory.atomic import atomic_write_text
from sketchstory.outputs import output_folder
from sketchstory.demo import world
from sketchstory.demo.stories import write_story_folder
from sketchstory.models import Components
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.provenance import versions
from sketchstory.story import parse_story


@dataclass(frozen=True)
class Scenario:
    name: str
    maga: dict  # overrides of settings.maga
    mode: str = "sequential"
    chunk_size: int = 0


SCENARIOS = (
    Scenario("plain", {"enabled": False}),
    Scenario("maga", {}),  # the defaults: anchors:0+window:2
    Scenario("maga-batched", {}, "batched", 4),
    Scenario("maga-budget", {"token_budget": 64}),
    Scenario("maga-all", {"memory": "all"}),  # the thesis
)


def bench_story(folder: Path, n_panels: int, size: int, steps: int, scenario: Scenario):
    """A world story of ``n_panels`` panels with the scenario's settings."""
    # Drawn at 64 px at least: the world's anti-aliased lines at 32 px read as noise to the sketch
    # checks; stage 2 scales the sketches to the story's size as it would an upload.
    path = write_story_folder(folder, world.make_story(3, n_panels, size=max(size, 64)), title="bench")
    doc = json.loads(path.read_text())
    doc["settings"] = {"model": "bench", "width": size, "height": size, "steps": steps, "guidance_scale": 7.5,
                       "mode": scenario.mode, "chunk_size": scenario.chunk_size, "maga": scenario.maga}
    return parse_story(doc, str(path)), path.parent


def measure(components: Components, n_panels: int, size: int, steps: int, scenario: Scenario) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        story, story_dir = bench_story(Path(tmp) / "story", n_panels, size, steps, scenario)
        t0, c0 = time.perf_counter(), time.process_time()
        report = generate(story, story_dir, Path(tmp) / "out", RunOptions(progress=False), components)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    info = report.info
    return {
        "scenario": scenario.name, "panels": n_panels, "seconds": round(seconds, 3),
        "seconds_per_panel": round(seconds / n_panels, 3), "cpu_seconds": round(cpu_seconds, 3),
        "memory_bank_peak_bytes": info["memory_bank_peak_bytes"],
        "peak_cuda_bytes": info["peak_cuda_bytes"],
    }


def run_bench(components: Components, panel_counts: list[int], size: int, steps: int,
              scenarios: tuple[Scenario, ...] = SCENARIOS, log=print) -> dict:
    rows = []
    for n in panel_counts:
        for sc in scenarios:
            rows.append(measure(components, n, size, steps, sc))
            r = rows[-1]
            log(f"{sc.name:13} N={n:2d}  {r['seconds']:8.2f} s  {r['seconds_per_panel']:7.2f} s/panel  "
                f"{r['cpu_seconds']:8.2f} CPU s  bank peak {r['memory_bank_peak_bytes'] / 2**20:8.2f} MiB")
    clock = "cpu_seconds" if components.device.type == "cpu" else "seconds"
    return {"rows": rows, "ratios": ratios(rows, panel_counts, clock), "clock": clock, "size": size, "steps": steps,
            "device": str(components.device), "dtype": str(components.dtype), "model": components.spec.name,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "versions": versions()}


def ratios(rows: list[dict], panel_counts: list[int], clock: str = "seconds") -> dict:
    """The targets of issue 9: linear growth, small MAGA overhead, bounded memory; times from ``clock``."""
    at = {(r["scenario"], r["panels"]): r for r in rows}
    out: dict[str, float] = {}
    top = max(panel_counts)
    half = top // 2
    for sc in {r["scenario"] for r in rows}:
        if (sc, half) in at and half:
            out[f"{sc}: time N={top} / N={half}"] = round(at[(sc, top)][clock] / at[(sc, half)][clock], 3)
        if sc != "plain" and ("plain", top) in at:  # same N, so the per-panel ratio is the total's
            out[f"{sc}: per-panel time / plain at N={top}"] = round(at[(sc, top)][clock] / at[("plain", top)][clock], 3)
        banks = [at[(sc, n)]["memory_bank_peak_bytes"] for n in panel_counts if (sc, n) in at and n >= 4]
        if len(banks) >= 2 and banks[0]:
            out[f"{sc}: bank peak N={top} / N=4"] = round(banks[-1] / banks[0], 3)
        one = at.get((sc, 2), {}).get("memory_bank_peak_bytes")  # at N=2 the bank holds exactly panel 0
        if one:  # the policy's panels plus the one being recorded
            out[f"{sc}: panels held at N={top}"] = round(at[(sc, top)]["memory_bank_peak_bytes"] / one, 2)
    return dict(sorted(out.items()))


def table(result: dict) -> str:
    cuda = any(r["peak_cuda_bytes"] for r in result["rows"])  # a GPU run: its peak memory per row
    lines = [f"sketchstory bench: {result['model']} on {result['device']} ({result['dtype']}), "
             f"{result['size']}x{result['size']}, {result['steps']} steps", "",
             "| scenario | panels | seconds | s/panel | CPU seconds | memory bank peak (MiB) |"
             + (" peak CUDA memory (GiB) |" if cuda else ""),
             "|---|---|---|---|---|---|" + ("---|" if cuda else "")]
    for r in result["rows"]:
        lines.append(f"| {r['scenario']} | {r['panels']} | {r['seconds']:.2f} | {r['seconds_per_panel']:.2f} | "
                     f"{r['cpu_seconds']:.2f} | {r['memory_bank_peak_bytes'] / 2**20:.2f} |"
                     + (f" {(r['peak_cuda_bytes'] or 0) / 2**30:.2f} |" if cuda else ""))
    lines += ["", f"| ratio (of {result['clock']}) | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result["ratios"].items()]
    lines.append(f"\npeak process memory: {result['peak_rss_bytes'] / 2**30:.2f} GiB")
    return "\n".join(lines)


def write_results(result: dict, out: Path) -> None:
    """Write bench.json and bench.md into ``out`` (new, empty or sketchstory's: check it before the work)."""
    with output_folder(out):
        atomic_write_text(out / "bench.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "bench.md", table(result) + "\n")
