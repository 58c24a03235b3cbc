"""Render a batch of stories on workers: one task per story, retried, resumable, reported.

``OUT/<name>/`` holds each story's outputs in ``generate``'s layout and ``OUT/batch.json`` the
report: per story its status (``done``, ``skipped``: finished by an earlier run, ``failed``), its
attempts, seconds, worker and error. Stories are checked for being finished here, before any
worker starts, and a rerun of the same command renders only what is missing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from sketchstory.atomic import atomic_write_text
from sketchstory.batch.cluster import Cluster, worker_pool
from sketchstory.batch.inputs import REPORT_NAME, StoryTask
from sketchstory.batch.pool import Outcome, run_with_retries
from sketchstory.batch.resume import finished
from sketchstory.batch.worker import StoryWorker
from sketchstory.errors import EXIT_INPUT
from sketchstory.outputs import output_folder

EXIT_MIXED = 1  # failed stories with different exit codes: each story's is in the report

Status = Literal["done", "skipped", "failed"]


@dataclass
class StoryStatus:
    name: str
    source: str
    status: Status
    attempts: int = 0
    seconds: float | None = None  # all attempts together
    worker: str | None = None  # host:pid of the last attempt
    error: str | None = None
    code: int | None = None  # as `generate` exits: 2 input, 3 model, 4 output, 5 memory; None unexpected
    details: str | None = None  # the traceback of an unexpected error


@dataclass
class BatchReport:
    out: Path
    stories: list[StoryStatus] = field(default_factory=list)
    workers: str = "no worker (nothing left to render)"
    seconds: float = 0.0
    complete: bool = False  # False: interrupted; the stories not listed had not finished

    def count(self, status: Status) -> int:
        return sum(s.status == status for s in self.stories)

    @property
    def exit_code(self) -> int:
        """0 if no story failed; else the failures' common exit code, or 1 if they differ."""
        codes = {s.code if s.code is not None else EXIT_MIXED for s in self.stories if s.status == "failed"}
        if not codes:
            return 0
        return codes.pop() if len(codes) == 1 else EXIT_MIXED

    def to_json(self) -> str:
        counts = Counter(s.status for s in self.stories)
        doc = {"schema": "sketchstory/batch", "version": 1, "out": str(self.out), "workers": self.workers,
               "seconds": round(self.seconds, 3), "complete": self.complete,
               "summary": {status: counts.get(status, 0) for status in ("done", "skipped", "failed")},
               "stories": [asdict(s) for s in self.stories]}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def run_batch(tasks: list[StoryTask], out: Path, cluster: Cluster, *, retries: int = 2, library: Path | None = None,
              keep_memory: bool = False, progress: bool = True, force: bool = False,
              inputs: Sequence[Path] = ()) -> BatchReport:
    """Render every usable, unfinished story into ``out/<name>/``; write and return the report.

    ``out`` must be new, empty or sketchstory's (``force``: any folder but one of ``inputs`` or ``/``);
    this process holds its lock throughout, so a second batch into it fails at once (``BusyError``).
    """
    if retries < 0:
        raise ValueError(f"--retries {retries}: give 0 or more")
    out = Path(out).resolve()  # workers elsewhere see the same path on the shared storage
    with output_folder(out, inputs=inputs, force=force):
        return _run(tasks, out, cluster, retries, library, keep_memory, progress, force)


def _run(tasks: list[StoryTask], out: Path, cluster: Cluster, retries: int, library: Path | None, keep_memory: bool,
         progress: bool, force: bool) -> BatchReport:
    start = time.perf_counter()
    statuses: list[StoryStatus | None] = [None] * len(tasks)
    todo: list[tuple[int, StoryTask]] = []
    for i, task in enumerate(tasks):
        if task.problem is not None:
            statuses[i] = StoryStatus(task.name, task.source, "failed", error=task.problem, code=EXIT_INPUT)
        elif finished(task, out / task.name, library):
            statuses[i] = StoryStatus(task.name, task.source, "skipped")
        else:
            todo.append((i, task))
    report = BatchReport(out)
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="story", disable=not progress, desc="batch")
    try:
        if todo:
            kwargs = {"out": out, "library": library, "keep_memory": keep_memory, "force": force}
            with worker_pool(cluster, StoryWorker, kwargs, "render", len(todo), "stories") as pool:
                report.workers = pool.description
                for outcome in run_with_retries(pool, todo, retries):
                    statuses[outcome.tag] = _status(tasks[outcome.tag], outcome)
                    bar.update(1)
                    bar.set_postfix(failed=sum(s is not None and s.status == "failed" for s in statuses))
        report.complete = True
    finally:
        bar.close()
        report.stories = [s for s in statuses if s is not None]
        report.seconds = time.perf_counter() - start
        atomic_write_text(out / REPORT_NAME, report.to_json())
    return report


def _status(task: StoryTask, outcome: Outcome) -> StoryStatus:
    status = StoryStatus(task.name, task.source, "done", outcome.attempts, round(outcome.seconds, 3), outcome.worker)
    if (failure := outcome.failure) is not None:
        status.status, status.error, status.code, status.details = "failed", failure.message, failure.code, failure.details
    return status
