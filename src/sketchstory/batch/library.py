"""Build a sketch library on workers: they draw, this process alone writes the index.

Workers draw whole runs (one scene's or object's candidates, a stage-1 story each) and send the
sketches back; the driver, holding the library's writer lock, indexes each one with its job as it
arrives (the SQLite index has one writer, so nothing races). Ids are content hashes and finished
jobs are recorded, so a sketch is never indexed twice and an interrupted build continues where it
stopped, with or without Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm import tqdm

from sketchstory.batch.cluster import Cluster, worker_pool
from sketchstory.batch.pool import Worker, run_with_retries
from sketchstory.library.prompts import Job, PromptsFile
from sketchstory.library.store import Library
from sketchstory.pipeline.library_build import BuildReport, Drawn, draw_run, job_label, plan_build, store_drawn

if TYPE_CHECKING:
    from sketchstory.models.pipelines import Stage1Model


@dataclass(frozen=True)
class DrawnRun:
    drawn: list[Drawn]
    load_seconds: float  # spent loading the model for this run (only a worker's first run loads it)


class SketchWorker(Worker):
    """Draws build runs with one stage-1 model, loaded on its first run and kept."""

    def __init__(self, model: str, device: str, threads: int | None) -> None:
        super().__init__(threads)
        from sketchstory.models import resolve_sketch_model

        self.spec, self.device = resolve_sketch_model(model), device
        self.loaded: Stage1Model | None = None

    def draw(self, item: tuple[list[Job], int]) -> DrawnRun:
        from sketchstory.models.pipelines import Stage1Model

        run, size = item
        start = time.perf_counter()
        if self.loaded is None:
            self.loaded = Stage1Model(self.spec, self.device)
        loaded = time.perf_counter() - start
        return DrawnRun(draw_run(self.loaded.pipe, self.spec, run, size), loaded)


def build_library_distributed(library: Library, prompts: PromptsFile, model: str, cluster: Cluster, *,
                              candidates: int | None = None, sundry_candidates: int | None = None,
                              retries: int = 2, progress: bool = True) -> BuildReport:
    """``build_library`` with the drawing spread over workers; a run that fails ``retries + 1`` times is
    reported in ``failed`` (its jobs stay undone, so the next build tries them again)."""
    start = time.perf_counter()
    plan, report = plan_build(library, prompts, model, candidates, sundry_candidates)
    with tqdm(total=report.total, initial=report.already, unit="sketch", disable=not progress) as bar:
        if plan.runs:
            items = [(i, (run, plan.size)) for i, run in enumerate(plan.runs)]
            with worker_pool(cluster, SketchWorker, {"model": model}, "draw", len(items), "scenes and objects") as pool:
                for outcome in run_with_retries(pool, items, retries):
                    run = plan.runs[outcome.tag]
                    if (failure := outcome.failure) is not None:
                        why = f"stage 1 failed {outcome.attempts} time(s): {failure.message}"
                        report.failed += [(job_label(job), why) for job in run]
                    else:
                        report.load_seconds += outcome.value.load_seconds
                        for drawn in outcome.value.drawn:
                            store_drawn(library, drawn, report)
                    bar.update(len(run))
    report.seconds = time.perf_counter() - start
    return report
