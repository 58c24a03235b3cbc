"""Build a library from a prompts file with stage 1: K sketch candidates per scene and object.

Each sketch is one stage-1 panel with its own seed; it is indexed, with its build job marked done,
in one transaction as soon as stage 1 has drawn it. So after an interruption (Ctrl-C, a crash, a
lost machine) the same command continues with the next undrawn sketch, and no sketch is indexed
twice (ids are content hashes, job keys are unique).

The work is split so that drawing can happen elsewhere: :func:`plan_build` lists the undrawn jobs
in runs (one stage-1 story each), :func:`draw_run` draws a run wherever the model is loaded, and
:func:`store_drawn` indexes a sketch in the one process that holds the library's writer lock
(``sketchstory.batch.library`` draws runs on Ray workers this way).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from sketchstory.library.prompts import Job, PromptsFile, jobs
from sketchstory.library.store import Library
from sketchstory.models import SketchModelSpec, resolve_sketch_model
from sketchstory.models.pipelines import Pipeline, Stage1Model
from sketchstory.pipeline.stage1 import Candidate, SketchOptions, generate_candidates
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
    load_seconds: float = 0.0  # loading the stage-1 model (on several workers: their sum)


@dataclass(frozen=True)
class BuildPlan:
    spec: SketchModelSpec
    size: int  # square side of the drawn sketches
    runs: list[list[Job]]  # the undrawn jobs: consecutive jobs of one scene or object, one stage-1 story each


@dataclass(frozen=True)
class Drawn:
    """A build job's sketch as stage 1 drew it, ready for the library's (single) writer."""

    job: Job
    seed: int  # the seed stage 1 drew with, which with the model reproduces the sketch
    sketch: Image.Image | None  # None: stage 1 drew no lines
    provenance: dict[str, Any] | None  # stage 1's record of how it drew the sketch


def build_library(library: Library, prompts: PromptsFile, model: str = "demo", *, candidates: int | None = None,
                  sundry_candidates: int | None = None, device: str | None = None,
                  progress: bool = True) -> BuildReport:
    """Build, or continue building, ``library`` from ``prompts`` with the stage-1 ``model``."""
    start = time.perf_counter()
    plan, report = plan_build(library, prompts, model, candidates, sundry_candidates)
    if plan.runs:
        loading = time.perf_counter()
        with (Stage1Model(plan.spec, device) as loaded,
              tqdm(total=report.total, initial=report.already, unit="sketch", disable=not progress) as bar):
            report.load_seconds = time.perf_counter() - loading

            def store(drawn: Drawn) -> None:
                store_drawn(library, drawn, report)
                bar.update(1)

            for run in plan.runs:
                draw_run(loaded.pipe, plan.spec, run, plan.size, on_drawn=store)
    report.seconds = time.perf_counter() - start
    return report


def plan_build(library: Library, prompts: PromptsFile, model: str, candidates: int | None = None,
               sundry_candidates: int | None = None) -> tuple[BuildPlan, BuildReport]:
    """What is left to draw, and a report that counts what earlier runs finished."""
    spec = resolve_sketch_model(model)
    todo = jobs(prompts, spec.name, candidates, sundry_candidates)
    done = library.index.done_jobs()
    pending = [job for job in todo if job.key not in done]
    plan = BuildPlan(spec, sketch_size(library.side, spec.native_size), list(_runs(pending)))
    return plan, BuildReport(total=len(todo), already=len(todo) - len(pending))


def draw_run(pipe: Pipeline, spec: SketchModelSpec, run: list[Job], size: int,
             on_drawn: Callable[[Drawn], None] | None = None) -> list[Drawn]:
    """Draw a run's sketches, handing each to ``on_drawn`` the moment it is drawn."""
    drawn: list[Drawn] = []
    with tempfile.TemporaryDirectory(prefix="sketchstory-build-") as tmp:

        def keep(n: int, candidates: Sequence[Candidate]) -> None:
            first, sketch = candidates[0], None
            if not first.blank:
                with Image.open(first.path) as opened:
                    sketch = opened.convert("L")
            drawn.append(Drawn(run[n], first.seed, sketch, read_png_meta(first.path)))
            if on_drawn is not None:
                on_drawn(drawn[-1])

        folders = {n: Path(tmp) / f"{n:04d}" for n in range(len(run))}
        generate_candidates(pipe, spec, _story(run, size), folders, SketchOptions(candidates=1, progress=False),
                            on_panel=keep)
    return drawn


def sketch_size(side: int, native: int | None) -> int:
    """Square side of built sketches: the library's, or the model's if smaller (no blurry upscaling)."""
    target = min(side, native) if native else side
    return max(8, target - target % 8)  # stage 1 and the VAE work in multiples of 8


def job_label(job: Job) -> str:
    """A build job in words, for reports: where its sketch belongs and its prompt."""
    m = job.meta
    where = f"{m.story} / {m.scene}" if m.group == "story" else m.category
    return f"{where} candidate {m.candidate}: {m.prompt}"


def _runs(pending: Sequence[Job]) -> Iterator[list[Job]]:
    """Consecutive jobs of the same scene or object: one stage-1 story each."""
    for _, run in groupby(pending, key=lambda j: (j.meta.group, j.meta.story, j.meta.scene_index,
                                                  j.meta.category, j.meta.prompt)):
        yield list(run)


def _story(run: list[Job], size: int) -> Story:
    """A stage-1 story whose panels are the run's sketches, each with its job's seed."""
    panels = [{"prompt": job.meta.prompt, "seed": job.meta.seed} for job in run]
    return parse_story({"panels": panels, "settings": {"width": size, "height": size}}, "library build")


def store_drawn(library: Library, drawn: Drawn, report: BuildReport) -> None:
    """Index one drawn sketch and mark its job done, in one transaction."""
    with library.index.db:
        if drawn.sketch is None:
            # Seeds are fixed, so drawing it again would give the same empty page: the job is done.
            report.failed.append((job_label(drawn.job), "stage 1 drew no lines"))
            library.index.finish_job(drawn.job.key, None)
            return
        added = library.add(drawn.sketch, replace(drawn.job.meta, seed=drawn.seed), drawn.provenance)
        report.duplicates += added.duplicate
        report.added += not added.duplicate
        library.index.finish_job(drawn.job.key, added.entry.id)
