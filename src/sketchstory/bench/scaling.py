"""How time and memory grow with the number of panels: plain ControlNet vs MAGA, per mode and policy.

Every number comes from one process and one set of random weights, through the same runner a
user's ``generate`` goes through (decode and PNG writes included), so ratios between rows are
meaningful; absolute seconds are not comparable across machines. On CPU the ratios use the
process's CPU time (all its threads), which other load on a shared machine barely moves, where
wall time can swing by 2x between two rows; on a GPU they use wall time (the work is asynchronous).

``plain`` is ControlNet as a user of diffusers' pipeline runs it, one panel after another; ``maga``
runs the shipped defaults, execution mode (``auto``) included, and ``maga-sequential`` /
``maga-batched`` the two explicit modes beside it. :func:`summary` checks the results against the
targets of issue 21.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

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
    mode: str = "auto"  # the default
    chunk_size: int = 0


SCENARIOS = (
    Scenario("plain", {"enabled": False}, "sequential"),  # one panel after another, as diffusers' pipeline
    Scenario("maga", {}),  # the shipped defaults: anchors:0+window:2, auto mode
    Scenario("maga-sequential", {}, "sequential"),
    Scenario("maga-batched", {}, "batched", 4),
    # The policies' rows run sequentially: there the bank shows how each policy's memory grows.
    Scenario("maga-budget", {"token_budget": 64}, "sequential"),
    Scenario("maga-all", {"memory": "all"}, "sequential"),  # the thesis's policy
)
QUICK = ("plain", "maga", "maga-sequential", "maga-batched")
# Issue 21's targets, on ratios of one run.
TARGETS = {"defaults per panel / plain at N=8": 0.5, "defaults time N=16 / N=8": 2.1, "bf16 speedup": 1.3,
           "bf16 mean pixel difference / 255": 2 / 255}


def bench_story(folder: Path, n_panels: int, size: int, steps: int, scenario: Scenario):
    """A world story of ``n_panels`` panels with the scenario's settings."""
    # Drawn at 64 px at least: the world's anti-aliased lines at 32 px read as noise to the sketch
    # checks; stage 2 scales the sketches to the story's size as it would an upload.
    path = write_story_folder(folder, world.make_story(3, n_panels, size=max(size, 64)), title="bench")
    doc = json.loads(path.read_text())
    doc["settings"] = {"model": "bench", "width": size, "height": size, "steps": steps, "guidance_scale": 7.5,
                       "mode": scenario.mode, "chunk_size": scenario.chunk_size, "maga": scenario.maga}
    return parse_story(doc, str(path)), path.parent


def measure(components: Components, n_panels: int, size: int, steps: int, scenario: Scenario, name: str = "",
            panels: list[np.ndarray] | None = None) -> dict:
    """One row: render the scenario's story of ``n_panels`` panels (its images appended to ``panels`` if given)."""
    with tempfile.TemporaryDirectory() as tmp:
        story, story_dir = bench_story(Path(tmp) / "story", n_panels, size, steps, scenario)
        t0, c0 = time.perf_counter(), time.process_time()
        report = generate(story, story_dir, Path(tmp) / "out", RunOptions(progress=False), components)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        if panels is not None:
            panels += [np.asarray(Image.open(Path(tmp) / "out" / p["file"]).convert("RGB"), np.int16)
                       for p in report.info["panels"]]
    info = report.info
    return {
        "scenario": name or scenario.name, "panels": n_panels, "seconds": round(seconds, 3),
        "seconds_per_panel": round(seconds / n_panels, 3), "cpu_seconds": round(cpu_seconds, 3),
        "chunk_size": info["chunk_size"], "dtype": info["dtype"],
        "memory_bank_peak_bytes": info["memory_bank_peak_bytes"],
        "peak_cuda_bytes": info["peak_cuda_bytes"],
    }


def _log_row(r: dict, log: Callable[[str], object]) -> None:
    log(f"{r['scenario']:15} N={r['panels']:2d}  {r['seconds']:8.2f} s  {r['seconds_per_panel']:7.2f} s/panel  "
        f"{r['cpu_seconds']:8.2f} CPU s  chunk {r['chunk_size']}  bank peak {r['memory_bank_peak_bytes'] / 2**20:8.2f} MiB")


def run_bench(components: Components, panel_counts: list[int], size: int, steps: int,
              scenarios: tuple[Scenario, ...] = SCENARIOS, log: Callable[[str], object] = print,
              other_dtype: Components | None = None) -> dict:
    """Every scenario at every story length; with ``other_dtype`` (the same model in another dtype) also the
    defaults in that dtype at the longest length but one, and its pixel difference to this dtype's."""
    rows, dtype_check = [], None
    maga = next(sc for sc in SCENARIOS if sc.name == "maga")
    measure(components, 2, size, steps, maga)  # warm-up (first calls, allocator), so no row pays for it
    for n in panel_counts:
        for sc in scenarios:
            rows.append(measure(components, n, size, steps, sc))
            _log_row(rows[-1], log)
    if other_dtype is not None:
        n = sorted(panel_counts)[-2] if len(panel_counts) > 1 else panel_counts[0]
        measure(other_dtype, 2, size, steps, maga)
        mine: list[np.ndarray] = []
        theirs: list[np.ndarray] = []
        base = measure(components, n, size, steps, maga, panels=mine)
        rows.append(measure(other_dtype, n, size, steps, maga, f"maga-{_short(other_dtype)}", panels=theirs))
        _log_row(rows[-1], log)
        diff = np.abs(np.stack(mine) - np.stack(theirs))
        dtype_check = {"dtypes": [_short(components), _short(other_dtype)], "panels": n,
                       "cpu_seconds": [base["cpu_seconds"], rows[-1]["cpu_seconds"]],
                       "seconds": [base["seconds"], rows[-1]["seconds"]],
                       "max_pixel_difference": int(diff.max()), "mean_pixel_difference": round(float(diff.mean()), 3)}
    clock = "cpu_seconds" if components.device.type == "cpu" else "seconds"
    return {"rows": rows, "ratios": ratios(rows, panel_counts, clock), "clock": clock, "size": size, "steps": steps,
            "device": str(components.device), "dtype": str(components.dtype), "model": components.spec.name,
            "dtype_check": dtype_check,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "versions": versions()}


def _short(components: Components) -> str:
    return {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}[str(components.dtype)]


def summary(result: dict) -> dict:
    """The three ratios of issue 21 and whether each meets its target (None: not measured, or not applicable)."""
    at = {(r["scenario"], r["panels"]): r[result["clock"]] for r in result["rows"]}
    ratios: dict[str, float | None] = {
        "defaults per panel / plain at N=8": _ratio(at.get(("maga", 8)), at.get(("plain", 8))),
        "defaults time N=16 / N=8": _ratio(at.get(("maga", 16)), at.get(("maga", 8))),
        "bf16 speedup": None, "bf16 mean pixel difference / 255": None,
    }
    check = result.get("dtype_check")
    bf16_default = result["dtype"] == "torch.bfloat16"
    if check and "bf16" in check["dtypes"] and "fp32" in check["dtypes"]:
        clock = check[result["clock"]]
        fp32, bf16 = (clock[check["dtypes"].index(d)] for d in ("fp32", "bf16"))
        ratios["bf16 speedup"] = _ratio(fp32, bf16)
        ratios["bf16 mean pixel difference / 255"] = round(check["mean_pixel_difference"] / 255, 5)
    passed: dict[str, bool | None] = {}
    for key, value in ratios.items():
        applicable = bf16_default or not key.startswith("bf16")  # bf16's targets bind only where it is the default
        if value is None or not applicable:
            passed[key] = None
        else:
            passed[key] = value >= TARGETS[key] if key == "bf16 speedup" else value <= TARGETS[key]
    return {"clock": result["clock"], "model": result["model"], "device": result["device"], "dtype": result["dtype"],
            "size": result["size"], "steps": result["steps"], "ratios": ratios, "targets": TARGETS, "pass": passed,
            "bf16_is_default": bf16_default, "dtype_check": check,
            "all_pass": all(v is not False for v in passed.values())}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(rows: list[dict], panel_counts: list[int], clock: str = "seconds") -> dict:
    """The targets of issue 9: linear growth, small MAGA overhead, bounded memory; times from ``clock``."""
    at = {(r["scenario"], r["panels"]): r for r in rows}
    out: dict[str, float] = {}
    top = max(panel_counts)
    half = top // 2
    for sc in {r["scenario"] for r in rows}:
        if (sc, top) not in at:  # a row at one length only (the dtype check)
            continue
        if (sc, half) in at and half:
            out[f"{sc}: time N={top} / N={half}"] = round(at[(sc, top)][clock] / at[(sc, half)][clock], 3)
        if sc != "plain" and ("plain", top) in at:  # same N, so the per-panel ratio is the total's
            out[f"{sc}: per-panel time / plain at N={top}"] = round(at[(sc, top)][clock] / at[("plain", top)][clock], 3)
        banks = [(n, at[(sc, n)]["memory_bank_peak_bytes"]) for n in panel_counts if (sc, n) in at and n >= 4]
        if len(banks) >= 2 and banks[0][1]:
            out[f"{sc}: bank peak N={top} / N={banks[0][0]}"] = round(banks[-1][1] / banks[0][1], 3)
        one = at.get((sc, 2), {}).get("memory_bank_peak_bytes")  # at N=2 the bank holds exactly panel 0
        if one:  # the policy's panels plus the one being recorded
            out[f"{sc}: panels held at N={top}"] = round(at[(sc, top)]["memory_bank_peak_bytes"] / one, 2)
    return dict(sorted(out.items()))


def table(result: dict) -> str:
    cuda = any(r["peak_cuda_bytes"] for r in result["rows"])  # a GPU run: its peak memory per row
    lines = [f"sketchstory bench: {result['model']} on {result['device']} ({result['dtype']}), "
             f"{result['size']}x{result['size']}, {result['steps']} steps", "",
             "| scenario | panels | chunk | seconds | s/panel | CPU seconds | memory bank peak (MiB) |"
             + (" peak CUDA memory (GiB) |" if cuda else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if cuda else "")]
    for r in result["rows"]:
        lines.append(f"| {r['scenario']} | {r['panels']} | {r.get('chunk_size', '')} | {r['seconds']:.2f} | "
                     f"{r['seconds_per_panel']:.2f} | {r['cpu_seconds']:.2f} | {r['memory_bank_peak_bytes'] / 2**20:.2f} |"
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
