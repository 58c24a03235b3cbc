"""Build a library from a prompts file with stage 1: K sketch candidates per scene and object.

Each sketch is one stage-1 panel with its own seed; it is indexed, with its build job marked done,
in one transaction as soon as stage 1 has drawn it. So after an interruption (Ctrl-C, a crash, a
lost machine) the same command continues with the next undrawn sketch, and no sketch is indexed
twice (ids are content hashes, job keys are unique).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from sketchstory.library.prompts import Job, PromptsFile, jobs
from sketchstory.library.store import Library
from sketchstory.provenance import read_png_meta
from sketchstory.story import Story, parse_story


@dataclass
class BuildReport:
    total: int = 0
    added: int = 0
    duplicates: int = 0
    already: int = 0  # finished by an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (which sketch, why)
    seconds: float = 0.0  # everything, model loading included
    load_seconds: float = 0.0  # loading the stage-1 model


def build_library(library: Library, prompts: PromptsFile, model: str = "demo", *, candidates: int | None = None,
                  sundry_candidates: int | None = None, device: str | None = None,
                  progress: bool = True) -> BuildReport:
    """Build, or continue building, ``library`` from ``prompts`` with the stage-1 ``model``."""
    # Stage 1 pulls in torch and diffusers: imported here so that searching a library stays light.
    from sketchstory.pipeline.stage1 import (
        SketchOptions,
        Stage1Model,
        generate_candidates,
        resolve_model,
    )

    start = time.perf_counter()
    spec = resolve_model(model)
    todo = jobs(prompts, spec.name, candidates, sundry_candidates)
    done = library.index.done_jobs()
    pending = [job for job in todo if job.key not in done]
    report = BuildReport(total=len(todo), already=len(todo) - len(pending))
    size = sketch_size(library.side, spec.native_size)
    options = SketchOptions(candidates=1, progress=False, device=device)
    if pending:
        loading = time.perf_counter()
        with (Stage1Model(spec, device) as loaded, tempfile.TemporaryDirectory(prefix="sketchstory-build-") as tmp,
              tqdm(total=len(todo), initial=report.already, unit="sketch", disable=not progress) as bar):
            report.load_seconds = time.perf_counter() - loading
            for run in _runs(pending):
                story = _story(run, size)
                folders = {n: Path(tmp) / f"{n:04d}" for n in range(len(run))}

                def store(n: int, drawn: Sequence, run: list[Job] = run) -> None:
                    _store(library, run[n], drawn[0].path, drawn[0].seed, drawn[0].blank, report)
                    bar.update(1)

                generate_candidates(loaded.pipe, spec, story, folders, options, on_panel=store)
    report.seconds = time.perf_counter() - start
    return report


def sketch_size(side: int, native: int | None) -> int:
    """Square side of built sketches: the library's, or the model's if smaller (no blurry upscaling)."""
    target = min(side, native) if native else side
    return max(8, target - target % 8)  # stage 1 and the VAE work in multiples of 8


def _runs(pending: Sequence[Job]) -> Iterator[list[Job]]:
    """Consecutive jobs of the same scene or object: one stage-1 story each."""
    for _, run in groupby(pending, key=lambda j: (j.meta.group, j.meta.story, j.meta.scene_index,
                                                  j.meta.category, j.meta.prompt)):
        yield list(run)


def _story(run: list[Job], size: int) -> Story:
    """A stage-1 story whose panels are the run's sketches, each with its job's seed."""
    panels = [{"prompt": job.meta.prompt, "seed": job.meta.seed} for job in run]
    return parse_story({"panels": panels, "settings": {"width": size, "height": size}}, "library build")


def _store(library: Library, job: Job, path: Path, seed: int, blank: bool, report: BuildReport) -> None:
    with library.index.db:
        if blank:
            # Seeds are fixed, so drawing it again would give the same empty page: the job is done.
            m = job.meta
            where = f"{m.story} / {m.scene}" if m.group == "story" else m.category
            report.failed.append((f"{where} candidate {m.candidate}: {m.prompt}", "stage 1 drew no lines"))
            library.index.finish_job(job.key, None)
            return
        with Image.open(path) as opened:
            sketch = opened.convert("L")
        # Meta.seed is the seed stage 1 drew with, which with the model reproduces the sketch.
        added = library.add(sketch, replace(job.meta, seed=seed), read_png_meta(path))
        report.duplicates += added.duplicate
        report.added += not added.duplicate
        library.index.finish_job(job.key, added.entry.id)
