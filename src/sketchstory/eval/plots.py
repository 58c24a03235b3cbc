"""Figures of a report: metric bars per system, and time against the number of panels (thesis Fig 6.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np

from sketchstory.atomic import atomic_write

BAR_METRICS = {"psnr": "PSNR (dB) ↑", "clip_t": "CLIP-T ↑", "clip_i": "CLIP-I ↑", "dino": "DINO ↑",
               "edge_f1": "sketch edge F1 ↑", "chamfer_px": "chamfer (px) ↓", "seconds": "seconds / story ↓"}


def _save(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return path


def metric_bars(doc: dict[str, Any], path: Path) -> Path:
    """One panel per computed metric, one bar per system (mean, with the std over stories)."""
    systems = list(doc["systems"])
    keys = [k for k in BAR_METRICS if any(k in s["metrics"] for s in doc["systems"].values())]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(2.6 * max(1, len(keys)), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        stats = [doc["systems"][s]["metrics"].get(key, {}) for s in systems]
        ax.bar(range(len(systems)), [m.get("mean", np.nan) for m in stats],
               yerr=[m.get("std", 0.0) for m in stats], color=[f"C{i}" for i in range(len(systems))], capsize=3)
        ax.set_title(BAR_METRICS[key], fontsize=9)
        ax.set_xticks(range(len(systems)), systems, rotation=45, ha="right", fontsize=8)
    if not keys:
        axes[0][0].text(0.5, 0.5, "no metric computed", ha="center")
    fig.tight_layout()
    return _save(fig, path)


def time_vs_panels(doc: dict[str, Any], path: Path) -> Path | None:
    """Cumulative generation time after each panel, mean over a system's stories; None without timings."""
    curves: dict[str, list[np.ndarray]] = {}
    for run in doc["runs"]:
        seconds = run.get("panel_seconds") or []
        if seconds and all(s is not None for s in seconds):
            curves.setdefault(run["system"], []).append(np.cumsum(seconds))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for system, runs in curves.items():
        length = max(len(c) for c in runs)
        # Mean over the stories that reach each panel count.
        mean = [np.mean([c[k] for c in runs if len(c) > k]) for k in range(length)]
        ax.plot(range(1, length + 1), mean, marker="o", label=system)
    ax.set_xticks(range(1, max(len(c) for runs in curves.values() for c in runs) + 1))
    ax.set_xlabel("panels generated")
    ax.set_ylabel("seconds (cumulative)")
    ax.set_title("time vs number of panels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
