"""Library benchmark: search latency on a large synthetic index, and build throughput of stage 1.

    python -m sketchstory.bench.library [--entries 100000] [--model demo] [--sketches 16]

Two synthetic indexes of ``--entries`` sketches, with prompts composed from word lists and real
thumbnails (toy-world sketches): one in the thesis library's shape (80 candidates per scene share
its text; 6% sundry objects), and the worst case for search, where every sketch has its own text.
Search is timed through the same :meth:`Index.search` the CLI uses, on a fresh connection (cold)
and then repeatedly (warm).
Build throughput is sketches per second of one worker (one process, one model) through the same
:func:`build_library` a user runs, model loading excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from PIL import Image

from sketchstory.library.index import Entry, Meta
from sketchstory.library.prompts import PromptsFile
from sketchstory.library.query import Filters
from sketchstory.library.resolve import resolve
from sketchstory.library.store import Library, thumbnail_png
from sketchstory.pipeline.library_build import build_library

_WHO = ("wizard", "knight", "princess", "robot", "dragon", "cat", "dog", "pirate", "astronaut", "detective",
        "witch", "fox", "bear", "girl", "boy", "old man", "queen", "farmer", "ghost", "mermaid")
_LOOK = ("young", "old", "tiny", "giant", "brave", "sleepy", "curious", "angry", "happy", "lonely")
_DOING = ("stands", "runs", "sleeps", "reads a book", "holds a lantern", "climbs a tree", "waves", "sits",
          "fights a monster", "finds a key", "looks at the stars", "rides a horse", "opens a door", "cooks soup")
_WHERE = ("in a forest", "in a castle", "on a ship", "in a city street", "on the moon", "in a cave", "at the beach",
          "in a kitchen", "on a mountain", "in a library", "in a desert", "under the sea", "in a garden")
_HOW = ("", "at night", "in the rain", "from behind", "close-up", "wearing a tall hat", "with a red scarf")
_THINGS = {"animals": ("horse", "owl", "rabbit", "turtle", "elephant", "snail", "frog", "lion"),
           "furniture": ("chair", "table", "lamp", "sofa", "bookshelf", "bed", "wardrobe", "stool"),
           "vehicles": ("bicycle", "car", "train", "sailboat", "airplane", "tractor", "bus", "rocket"),
           "tools": ("hammer", "saw", "wrench", "shovel", "ladder", "scissors", "axe", "paintbrush"),
           "food": ("apple", "teapot", "cake", "bread loaf", "pumpkin", "ice cream cone", "pizza", "banana"),
           "clothing": ("hat", "boot", "scarf", "crown", "cloak", "glove", "umbrella", "backpack")}
_SCENE_WORDS = (_WHO, _LOOK, _DOING, _WHERE, _HOW)

QUERIES: tuple[tuple[str, Filters], ...] = (
    ("wizard", Filters()),  # a frequent word: thousands of sketches to rank
    ("wizard hat", Filters()),  # two words, both must match
    ('"reads a book"', Filters()),  # a phrase
    ("dragon cave night", Filters()),
    ("teapot", Filters(group="sundry")),  # a sundry object, filtered by group
    ("zeppelin unicorn", Filters()),  # matches nothing: the any-word fallback runs too
    ("forest", Filters(group="story")),
)


def _scene_text(n: int) -> str:
    """Scene text number ``n`` of the 254,800 that the word lists make, e.g. "a young wizard sits in a cave"."""
    words = []
    for options in _SCENE_WORDS:
        n, i = divmod(n, len(options))
        words.append(options[i])
    who, look, doing, where_, how = words
    return " ".join(filter(None, (f"a {look} {who}", doing, where_, how)))


def thesis_shaped(count: int, rng: random.Random) -> Iterator[Meta]:
    """SketchXL's proportions (16,000 story sketches, 80 per scene; 1,000 sundry objects), scaled to ``count``."""
    scenes = round(count * 16 / 17 / 80)
    for s in range(scenes):
        title = f"The {rng.choice(_LOOK)} {rng.choice(_WHO)} and the {rng.choice(_THINGS['clothing'])} {s // 4}"
        prompt = _scene_text(rng.randrange(254_800))
        for k in range(80):
            yield Meta("story", prompt, ("story",), story=title, scene=f"scene {s % 4 + 1}", scene_index=s % 4,
                       candidate=k)
    for _ in range(count - 80 * scenes):
        category = rng.choice(tuple(_THINGS))
        prompt = f"a {rng.choice(_LOOK)} {rng.choice(_THINGS[category])} {rng.choice(_HOW)}".strip()
        yield Meta("sundry", prompt, (category,), category=category, candidate=0)


def distinct_texts(count: int, rng: random.Random) -> Iterator[Meta]:
    """The worst case for search: every sketch has its own text (a library of imported drawings)."""
    for n in rng.sample(range(254_800), count):
        yield Meta("user", _scene_text(n), (rng.choice(tuple(_THINGS)),), category=rng.choice(_WHO))


SHAPES = {"thesis-shaped": thesis_shaped, "distinct-texts": distinct_texts}


def synthetic_entries(metas: Iterator[Meta], thumbs: list[bytes]) -> Iterator[tuple[Entry, bytes]]:
    for n, meta in enumerate(metas):
        digest = f"{n:064x}"
        entry = Entry(digest[-12:], digest, replace(meta, seed=n), 512, 512, f"sketches/{digest[-12:-10]}/"
                      f"{digest[-12:]}.png", 0.0)
        yield entry, thumbs[n % len(thumbs)]


def world_thumbnails(count: int = 64) -> list[bytes]:
    from sketchstory.demo import world

    return [thumbnail_png(Image.fromarray(world.sample(i, 128).sketch)) for i in range(count)]


def bench_search(root: Path, shape: str, entries: int, repeats: int) -> dict:
    started = time.perf_counter()
    metas = SHAPES[shape](entries, random.Random(0))
    with Library.writer(root) as library:
        library.index.bulk_insert(synthetic_entries(metas, world_thumbnails()))
        texts = library.index.db.execute("SELECT count(*) FROM texts").fetchone()[0]
    result: dict = {"shape": shape, "entries": entries, "texts": texts,
                    "index_seconds": round(time.perf_counter() - started, 2),
                    "index_mib": round((root / "index.sqlite").stat().st_size / 2**20, 1), "queries": []}
    for text, filters in QUERIES:
        with Library.open(root) as library:
            t0 = time.perf_counter()
            hits = library.index.search(text, filters)
            cold = time.perf_counter() - t0
            times, cpu = [], []
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                library.index.search(text, filters)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        times.sort()
        result["queries"].append({
            "query": text, "filters": {k: v for k, v in vars(filters).items() if v}, "hits": len(hits),
            "cold_ms": round(cold * 1e3, 2), "median_ms": round(statistics.median(times) * 1e3, 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1e3, 2), "max_ms": round(times[-1] * 1e3, 2),
            # CPU time of this process: what the query costs when it does not share the CPU.
            "cpu_median_ms": round(statistics.median(cpu) * 1e3, 2)})
    return result


def bench_resolve(root: Path, repeats: int) -> float:
    """Milliseconds to resolve one ``library:ID`` (open the index, look up, check the file)."""
    from sketchstory.demo import world

    with Library.writer(root) as library, library.index.db:
        entry = library.add(Image.fromarray(world.sample(0, 128).sketch), Meta("user", "a sketch")).entry
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        resolve(f"library:{entry.id}", root)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 2)


def bench_build(root: Path, model: str, sketches: int, device: str | None) -> dict:
    """Sketches per second of one worker (one process, one model), model loading not counted."""
    scene = {"prompt": "a wizard in a blue robe standing in a forest, in the middle"}
    prompts = PromptsFile.model_validate({"candidates": sketches, "stories": [{"name": "bench", "scenes": [scene]}]})
    with Library.writer(root) as library:
        run = build_library(library, prompts, model, device=device, progress=False)
    drawn = run.added + run.duplicates + len(run.failed)
    return {"model": model, "sketches": drawn, "unusable": len(run.failed), "model_load_s": round(run.load_seconds, 2),
            "sketches_per_s": round(drawn / (run.seconds - run.load_seconds), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sketchstory.bench.library", description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="synthetic index size (default 100000)")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per query")
    parser.add_argument("--model", default="demo", help="stage-1 model for the build throughput (demo, tiny ...)")
    parser.add_argument("--sketches", type=int, default=16, help="sketches to build for the throughput (0: skip)")
    parser.add_argument("--device")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    result: dict = {"search": [], "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    print(f"load average {result['load_average'][0]:.1f} on {result['cpus']} CPUs: wall-clock times include "
          "waiting for the CPU; 'cpu med' is this process's own CPU time")
    with tempfile.TemporaryDirectory(prefix="sketchstory-bench-") as tmp:
        for shape in SHAPES:
            s = bench_search(Path(tmp) / shape, shape, args.entries, args.repeats)
            result["search"].append(s)
            print(f"{shape} index: {s['entries']} sketches, {s['texts']} distinct texts, {s['index_mib']} MiB, "
                  f"built in {s['index_seconds']} s")
            print(f"  {'query':20} {'filters':19} {'hits':>4} {'cold ms':>8} {'median':>7} {'p95':>7} {'max':>7} "
                  f"{'cpu med':>7}")
            for q in s["queries"]:
                print(f"  {q['query']:20} {json.dumps(q['filters']) if q['filters'] else '':19} {q['hits']:4} "
                      f"{q['cold_ms']:8} {q['median_ms']:7} {q['p95_ms']:7} {q['max_ms']:7} {q['cpu_median_ms']:7}")
        result["resolve_ms"] = bench_resolve(Path(tmp) / "small", args.repeats)
        print(f"resolve library:ID: {result['resolve_ms']} ms (median)")
        if args.sketches:
            from sketchstory.models import ModelLoadError

            try:
                result["build"] = b = bench_build(Path(tmp) / "build", args.model, args.sketches, args.device)
            except ModelLoadError as error:
                print(f"build throughput not measured: {error}")
            else:
                print(f"build with {b['model']}: {b['sketches_per_s']} sketches/s per worker ({b['sketches']} "
                      f"sketches, model load {b['model_load_s']} s not counted, {b['unusable']} unusable)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
