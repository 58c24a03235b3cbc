"""Soak test: many small stories in one process; memory, open files and threads must stay flat.

    python -m sketchstory.bench.soak --stories 50 [--reload] [--model tiny] [--device cpu]

Each story is a toy-world story of 2 to 5 panels (a different one every time), rendered through
the same runner as ``generate`` into a fresh folder that is removed afterwards. After every story
the process's resident memory (``VmRSS``), open file descriptors, threads (OS and Python) and CUDA
memory are sampled. After a warm-up (caches, lazy thread pools), the resident memory's trend must
stay under ``--max-growth-kib`` per story and the file descriptors and threads must not grow; the
exit code is 1 otherwise. Linux only (it reads ``/proc/self``).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sketchstory.demo import world
from sketchstory.demo.stories import write_story_folder
from sketchstory.models import Components, load, resolve_spec
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story

MiB = 2**20


@dataclass(frozen=True)
class Sample:
    story: int
    panels: int
    seconds: float
    rss: int  # bytes
    fds: int
    os_threads: int
    py_threads: int
    cuda: int | None  # bytes allocated by torch on the GPU, None without CUDA


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmRSS: the soak test needs Linux")


def sample(story: int, panels: int, seconds: float) -> Sample:
    gc.collect()  # garbage that a collection frees is not a leak
    cuda = torch.cuda.memory_allocated() if torch.cuda.is_available() else None
    return Sample(story, panels, seconds, rss_bytes(), len(os.listdir("/proc/self/fd")),
                  len(os.listdir("/proc/self/task")), threading.active_count(), cuda)


def soak(stories: int, work: Path, *, model: str = "tiny", device: str | None = None, reload: bool = False,
         size: int = 32, steps: int = 2) -> list[Sample]:
    """Render ``stories`` stories one after another; one sample after each."""
    spec = resolve_spec(model)
    components: Components | None = None if reload else load(spec, device)
    settings = {"model": model, "width": size, "height": size, "steps": steps, "guidance_scale": 4.0,
                "maga": {"start_step": "1/2", "memory": "anchors:0+window:2"}}
    samples = []
    for k in range(stories):
        panels = 2 + k % 4
        folder = work / f"story_{k:04d}"
        path = write_story_folder(folder, world.make_story(k, panels), title=f"soak {k}", settings=settings)
        start = time.perf_counter()
        report = generate(load_story(path), folder, folder / "out",
                          RunOptions(progress=False, device=device, keep_memory=k % 2 == 1), components)
        if sorted(report.rendered) != list(range(panels)) or not (folder / "out" / "strip.png").is_file():
            raise RuntimeError(f"story {k}: rendered {report.rendered} of {panels} panels")
        seconds = time.perf_counter() - start
        shutil.rmtree(folder)
        samples.append(sample(k, panels, seconds))
    return samples


def trend_kib(steady: list[Sample], values: list[int]) -> float:
    """Least-squares growth of ``values`` (bytes, one per steady sample) in KiB per story."""
    x = np.array([s.story for s in steady], dtype=float)
    return float(np.polyfit(x, np.array(values, dtype=float), 1)[0] / 1024)


def problems(samples: list[Sample], warmup: int, max_growth_kib: float) -> list[str]:
    """What grew after the warm-up; empty when everything stayed flat."""
    steady = samples[warmup:]
    if len(steady) < 2:
        return [f"{len(samples)} stories leave fewer than 2 after a warm-up of {warmup}: run more"]
    found = []
    for label, values in [("resident memory", [s.rss for s in steady]),
                          ("CUDA memory", [s.cuda for s in steady if s.cuda is not None])]:
        if len(values) == len(steady):
            slope = trend_kib(steady, values)
            if slope > max_growth_kib:
                found.append(f"{label} grows by {slope:.0f} KiB per story (limit {max_growth_kib:g})")
    for label in ("fds", "os_threads", "py_threads"):
        first, most = getattr(steady[0], label), max(getattr(s, label) for s in steady)
        if most > first:
            found.append(f"{label} grew from {first} to {most} after the warm-up")
    return found


def table(samples: list[Sample]) -> str:
    rows = ["story  panels  seconds  RSS MiB  fds  threads  py threads  CUDA MiB"]
    for s in samples:
        cuda = "-" if s.cuda is None else f"{s.cuda / MiB:.1f}"
        rows.append(f"{s.story:5d}  {s.panels:6d}  {s.seconds:7.2f}  {s.rss / MiB:7.1f}  {s.fds:3d}  "
                    f"{s.os_threads:7d}  {s.py_threads:10d}  {cuda:>8}")
    return "\n".join(rows)


def summary(samples: list[Sample], warmup: int) -> str:
    steady = samples[warmup:]
    slope = trend_kib(steady, [s.rss for s in steady]) if len(steady) > 1 else 0.0
    return (f"{len(samples)} stories, {sum(s.panels for s in samples)} panels, warm-up {warmup}: RSS "
            f"{steady[0].rss / MiB:.1f} -> {steady[-1].rss / MiB:.1f} MiB (trend {slope:+.1f} KiB/story), "
            f"fds {steady[0].fds} -> {steady[-1].fds}, OS threads {steady[0].os_threads} -> {steady[-1].os_threads}, "
            f"Python threads {steady[0].py_threads} -> {steady[-1].py_threads}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sketchstory.bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=50)
    parser.add_argument("--warmup", type=int,
                        help="stories before the trend is measured (default: a fifth, at least 1)")
    parser.add_argument("--max-growth-kib", type=float, default=64.0,
                        help="largest allowed resident-memory trend per story after the warm-up (default 64)")
    parser.add_argument("--model", default="tiny", help="a model spec (default tiny: random weights, built in code)")
    parser.add_argument("--device")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--reload", action="store_true", help="load the model for every story, as one CLI call each")
    parser.add_argument("--work", type=Path, help="folder for the story folders (default: a temporary one)")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else max(1, args.stories // 5)
    if args.stories < warmup + 2:
        parser.error(f"--stories {args.stories}: give at least {warmup + 2} (warm-up {warmup}, then a trend)")
    with tempfile.TemporaryDirectory(prefix="sketchstory-soak-", dir=args.work) as work:
        samples = soak(args.stories, Path(work), model=args.model, device=args.device, reload=args.reload,
                       size=args.size, steps=args.steps)
    print(table(samples))
    print(summary(samples, warmup))
    found = problems(samples, warmup, args.max_growth_kib)
    for problem in found:
        print(f"LEAK: {problem}", file=sys.stderr)
    print("flat: no growth in memory, files or threads" if not found else "not flat", flush=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
