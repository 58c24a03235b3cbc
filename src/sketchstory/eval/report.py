"""Report files: ``report.json`` (every number), ``report.md`` (tables), and the plots.

The main table follows the thesis's Table 5.2 (image source, PSNR, average NIMA score) and adds
the field's columns (CLIP-T, CLIP-I, DreamSim), DINO, sketch fidelity, time and memory. A cell
says ``blocked`` when the metric cannot be computed on this install and ``—`` when it was not
computed for these runs (no model, no reference folder, no sketches, no run.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sketchstory.atomic import atomic_write_text
from sketchstory.outputs import output_folder

# (metric key, column title, format); the first three are Table 5.2's.
COLUMNS: list[tuple[str, str, str]] = [
    ("psnr", "PSNR (↑)", "{:.2f}"),
    ("nima", "Average NIMA score (↑)", "{:.2f}"),
    ("clip_t", "CLIP-T (↑)", "{:.3f}"),
    ("clip_i", "CLIP-I (↑)", "{:.3f}"),
    ("dreamsim", "DreamSim (↓)", "{:.3f}"),
    ("dino", "DINO (↑)", "{:.3f}"),
    ("clip_i_character", "CLIP-I per character (↑)", "{:.3f}"),
    ("dino_character", "DINO per character (↑)", "{:.3f}"),
    ("edge_f1", "Sketch F1 (↑)", "{:.3f}"),
    ("chamfer_px", "Chamfer px (↓)", "{:.2f}"),
    ("seconds", "s / story (↓)", "{:.1f}"),
    ("peak_memory_bytes", "Peak memory (↓)", "{}"),
]
STORY_COLUMNS = ["clip_t", "clip_i", "dino", "edge_f1", "chamfer_px", "psnr", "seconds"]


def _bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def cell(key: str, value: float | None, fmt: str, blocked: bool) -> str:
    if blocked:
        return "blocked"
    if value is None:
        return "—"
    return _bytes(value) if key == "peak_memory_bytes" else fmt.format(value)


def markdown(doc: dict[str, Any]) -> str:
    blocked = {k for k, m in doc["models"].items() if m["status"] == "blocked"}
    fmt = {k: f for k, _, f in COLUMNS}
    lines = ["# sketchstory evaluation", "",
             (f"{len(doc['runs'])} run(s) of {len(doc['systems'])} system(s); means over stories"
              " (report.json has standard deviations and every panel's numbers)."), "",
             "| Image source | " + " | ".join(t for _, t, _ in COLUMNS) + " | stories |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for name, system in doc["systems"].items():
        values = [cell(k, system["metrics"].get(k, {}).get("mean"), f, k in blocked) for k, _, f in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(values) + f" | {system['stories']} |")
    lines += ["", "## Metrics and models", ""]
    for key, model in doc["models"].items():
        text = model.get("source", "") if model["status"] == "ok" else model.get("note", "")
        lines.append(f"- **{key}**: {model['status']}" + (f": {text}" if text else ""))
    o = doc["options"]
    masking = "on (sketch subject mask)" if o["remove_background"] else "off"
    lines += [f"- background removal for CLIP-I/DINO: {masking}",
              f"- sketch edge tolerance: {o['tolerance'] or '1 % of the image diagonal'} px", "",
              "## Per story", "", "| system | story | panels | " + " | ".join(STORY_COLUMNS) + " |",
              "|---" * (len(STORY_COLUMNS) + 3) + "|"]
    for run in doc["runs"]:
        values = [cell(k, run["metrics"].get(k), fmt.get(k, "{:.3f}"), False) for k in STORY_COLUMNS]
        lines.append(f"| {run['system']} | {run['story']} | {run['panels']} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_report(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write report.json, report.md and, with matplotlib, metrics.png and time_vs_panels.png into ``out``
    (new, empty or sketchstory's: see :mod:`sketchstory.outputs`)."""
    with output_folder(Path(out)) as out:
        return _write(doc, out)


def _write(doc: dict[str, Any], out: Path) -> list[Path]:
    try:
        from sketchstory.eval.plots import metric_bars, time_vs_panels
    except ImportError:  # matplotlib comes with the `eval` extra; the numbers do not need it
        plots: list[Path] = []
        doc = {**doc, "plots": "not drawn: matplotlib is not installed (pip install 'sketchstory[eval]')"}
    else:
        timing = time_vs_panels(doc, out / "time_vs_panels.png")
        plots = [metric_bars(doc, out / "metrics.png")] + ([timing] if timing else [])
        doc = {**doc, "plots": [p.name for p in plots]}
    return [atomic_write_text(out / "report.json", json.dumps(doc, indent=2) + "\n"),
            atomic_write_text(out / "report.md", markdown(doc))] + plots
