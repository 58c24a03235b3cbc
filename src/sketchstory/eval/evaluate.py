"""Every metric over a set of runs, grouped by system: the numbers behind report.json.

Learned metrics whose model cannot be loaded are skipped, with the loader's message as the
note; DreamSim and NIMA are listed as blocked with the reason. No number is ever filled in.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sketchstory.eval.edges import sketch_fidelity
from sketchstory.eval.learned import CLIP_DEFAULT, DINO_DEFAULT, ClipScorer, DinoScorer, mean_pairwise_similarity
from sketchstory.eval.psnr import mean_image, psnr
from sketchstory.eval.runs import Run, RunPanel, open_rgb
from sketchstory.models import ModelLoadError
from sketchstory.sketches import SketchError, sketch_foreground_mask

SCHEMA = "sketchstory/eval"

# Checked with `pip install --dry-run` beside torch 2.13.0+cpu; see docs/eval.md.
BLOCKED = {
    "dreamsim": "the dreamsim package (0.2.1) needs open_clip_torch, timm and torchvision; installing it "
                "replaces torch 2.13.0+cpu with torch 2.14.1 and CUDA wheels, and PyPI's torchvision does "
                "not import beside the CPU torch, so DreamSim is not computed",
    "nima": "NIMA needs an InceptionV3 backbone: transformers and diffusers have none, timm and torchvision "
            "(which do) need torchvision, which breaks torch 2.13.0+cpu here, and no NIMA-InceptionV3 "
            "checkpoint is reachable offline, so NIMA is not computed",
}

# Lower is better for these; higher for every other metric.
LOWER_IS_BETTER = {"chamfer_px", "dreamsim", "seconds", "seconds_per_panel", "peak_memory_bytes"}


@dataclass(frozen=True)
class EvalOptions:
    clip: str | None = CLIP_DEFAULT  # hub id or folder; None skips CLIP-T and CLIP-I
    dino: str | None = DINO_DEFAULT  # hub id or folder; None skips DINO
    reference: Path | None = None  # folder of pictures for PSNR; None skips PSNR
    remove_background: bool = False  # CLIP-I / DINO on the sketched subject only
    tolerance: float | None = None  # edge match distance in pixels (default: 1 % of the diagonal)
    device: str = "cpu"
    cache_dir: Path | None = None  # where the reference mean image is cached

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def load_scorers(options: EvalOptions) -> tuple[ClipScorer | None, DinoScorer | None, dict[str, dict]]:
    """The learned models, each with its status: ``ok``, ``skipped`` (not asked for / not loadable), ``blocked``."""
    status: dict[str, dict] = {}
    scorers: dict[str, Any] = {}
    for key, kind, source in (("clip", ClipScorer, options.clip), ("dino", DinoScorer, options.dino)):
        if source is None:
            status[key] = {"status": "skipped", "note": f"not requested (--no-{key})"}
            continue
        try:
            scorers[key] = kind(source, options.device)
            status[key] = {"status": "ok", "source": source}
        except ModelLoadError as err:
            status[key] = {"status": "skipped", "source": source, "note": str(err)}
    for key, reason in BLOCKED.items():
        status[key] = {"status": "blocked", "note": reason}
    return scorers.get("clip"), scorers.get("dino"), status


def subject_only(image: Image.Image, panel: RunPanel) -> Image.Image | None:
    """The panel with everything outside its sketch's subject region painted white; None without a sketch."""
    if panel.sketch is None:
        return None
    try:
        mask = sketch_foreground_mask(open_rgb(panel.sketch), image.size)
    except SketchError:
        return None
    pixels = np.asarray(image).copy()
    pixels[~mask] = 255
    return Image.fromarray(pixels)


def _mean(values: list[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def per_character_similarity(embeddings: torch.Tensor, panels: tuple[RunPanel, ...]) -> float | None:
    """ViStoryBench's self-consistency in the same spirit: for each character in two panels or more,
    the mean pairwise similarity of those panels; then the mean over those characters (None: none)."""
    names = dict.fromkeys(name for p in panels for name in p.characters)
    sims = [mean_pairwise_similarity(embeddings[[i for i, p in enumerate(panels) if name in p.characters]])
            for name in names]
    return _mean([s for s in sims if s is not None])


def evaluate_run(run: Run, options: EvalOptions, clip: ClipScorer | None, dino: DinoScorer | None,
                 reference: Callable[[tuple[int, int]], np.ndarray] | None) -> dict[str, Any]:
    images = [open_rgb(p.image) for p in run.panels]
    per_panel: list[dict[str, Any]] = [{"index": p.index, "prompt": p.prompt} for p in run.panels]
    metrics: dict[str, float | None] = {}
    for record, panel, image in zip(per_panel, run.panels, images, strict=True):
        if panel.canny is not None:
            record.update(sketch_fidelity(image, open_rgb(panel.canny), options.tolerance).as_metrics())
        if reference is not None:
            record["psnr"] = psnr(image, reference(image.size))
    for key in ("edge_precision", "edge_recall", "edge_f1", "chamfer_px", "psnr"):
        metrics[key] = _mean([r[key] for r in per_panel if key in r])
    subjects = [subject_only(im, p) for im, p in zip(images, run.panels, strict=True)] \
        if options.remove_background else [None] * len(images)
    identity = [s if s is not None else im for s, im in zip(subjects, images, strict=True)]
    if clip is not None:
        prompted = [(r, im) for r, im in zip(per_panel, images, strict=True) if r["prompt"]]
        if prompted:
            sims = (clip.images([im for _, im in prompted]) * clip.texts([r["prompt"] for r, _ in prompted])).sum(-1)
            for (record, _), sim in zip(prompted, sims.tolist(), strict=True):
                record["clip_t"] = sim
        metrics["clip_t"] = _mean([r["clip_t"] for r in per_panel if "clip_t" in r])
        embeddings = clip.images(identity)
        metrics["clip_i"] = mean_pairwise_similarity(embeddings)
        metrics["clip_i_character"] = per_character_similarity(embeddings, run.panels)
    if dino is not None:
        embeddings = dino.images(identity)
        metrics["dino"] = mean_pairwise_similarity(embeddings)
        metrics["dino_character"] = per_character_similarity(embeddings, run.panels)
    metrics.update(_cost(run.info, len(run.panels)))
    return {"system": run.system, "story": run.story, "path": str(run.path), "panels": len(run.panels),
            "background_removed": sum(s is not None for s in subjects), "metrics": metrics,
            "panel_seconds": [p.get("seconds") for p in run.info.get("panels", [])], "per_panel": per_panel}


def _cost(info: dict[str, Any], panels: int) -> dict[str, float | None]:
    seconds = info.get("total_seconds")
    peak = info.get("peak_cuda_bytes") or info.get("peak_rss_bytes")
    return {"seconds": seconds, "seconds_per_panel": seconds / panels if seconds is not None else None,
            "peak_memory_bytes": peak, "memory_bank_peak_bytes": info.get("memory_bank_peak_bytes")}


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per system: each metric's mean, standard deviation and count over its stories."""
    systems: dict[str, dict[str, Any]] = {}
    for result in results:
        entry = systems.setdefault(result["system"], {"stories": 0, "panels": 0, "values": {}})
        entry["stories"] += 1
        entry["panels"] += result["panels"]
        for key, value in result["metrics"].items():
            if value is not None:
                entry["values"].setdefault(key, []).append(value)
    for entry in systems.values():
        values = entry.pop("values")
        entry["metrics"] = {k: {"mean": statistics.fmean(v), "std": statistics.pstdev(v), "n": len(v)}
                            for k, v in values.items()}
    return systems


def evaluate(runs: list[Run], options: EvalOptions, *, scorers: tuple[ClipScorer | None, DinoScorer | None,
             dict[str, dict]] | None = None) -> dict[str, Any]:
    """All metrics for all runs: the report document (see report.write_report)."""
    if not runs:
        raise ValueError("no runs to evaluate")
    clip, dino, models = scorers or load_scorers(options)
    reference: Callable[[tuple[int, int]], np.ndarray] | None = None
    if options.reference is not None:
        # One mean image per panel size, hashed and loaded once per evaluation.
        reference = functools.cache(functools.partial(mean_image, options.reference, cache_dir=options.cache_dir))
        models["psnr_reference"] = {"status": "ok", "source": str(options.reference)}
    else:
        models["psnr_reference"] = {"status": "skipped", "note": "no --reference folder given"}
    results = [evaluate_run(run, options, clip, dino, reference) for run in runs]
    return {"schema": SCHEMA, "version": 1, "options": options.as_dict(), "models": models,
            "systems": summarize(results), "runs": results}
