"""The import graph of ``sketchstory``: no cycles, and no module imports a layer above its own.

Layers, lowest first (a module may import its own layer and those below, never one above):

    base      atomic, errors, provenance, data, locks, outputs: no sketchstory imports of note
    core      story, sketches, lineart, editing, layout, panels, cast, tokenizer, attention/, library/, benchmarks/:
              documents, drawings, MAGA's arithmetic, the sketch library's storage, benchmark imports; no models
    models    models/: registries, loading, caching and releasing of every model
    pipeline  pipeline/: stage 1, stage 2, per-panel conditions, the story runner, library builds;
              maga: MAGA attached to a user's own diffusers pipeline (the public Python API)
    eval      eval/: metrics, baselines and the ablation grid over runs
    demo      demo/: the toy world, its model's training, the consistency study (which uses eval)
    tools     bench/ (benchmarks on demo stories), batch/ (stories and library builds on workers)
    ui        ui/: the web application
    commands  commands/, cli.py, __main__.py: the ``sketchstory`` command

Every import counts, also those inside functions (imported late to keep ``--help`` fast) and
under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sketchstory

LAYERS: list[tuple[str, ...]] = [
    ("sketchstory", "sketchstory.atomic", "sketchstory.errors", "sketchstory.provenance", "sketchstory.data",
     "sketchstory.locks", "sketchstory.outputs"),
    ("sketchstory.story", "sketchstory.sketches", "sketchstory.lineart", "sketchstory.editing", "sketchstory.layout",
     "sketchstory.panels", "sketchstory.cast", "sketchstory.tokenizer", "sketchstory.attention", "sketchstory.library",
     "sketchstory.benchmarks"),
    ("sketchstory.models",),
    ("sketchstory.pipeline", "sketchstory.maga"),
    ("sketchstory.eval",),
    ("sketchstory.demo",),
    ("sketchstory.bench", "sketchstory.batch"),
    ("sketchstory.ui",),
    ("sketchstory.commands", "sketchstory.cli", "sketchstory.__main__"),
]
ROOT = Path(sketchstory.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("sketchstory", *path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The sketchstory modules ``name`` imports: ``from a import b`` is ``a.b`` when that is a module."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.split(".")[0] == "sketchstory"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "sketchstory":
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                    for a in node.names}
    assert out <= set(known), f"{name} imports modules that do not exist: {sorted(out - set(known))}"
    return out - {name}


def layer(name: str) -> int:
    """The index in LAYERS of the longest prefix that names ``name`` or a package holding it."""
    matches = [(len(prefix), i) for i, group in enumerate(LAYERS) for prefix in group
               if name == prefix or (prefix != "sketchstory" and name.startswith(prefix + "."))]
    assert matches, f"{name} is in no layer: add it to LAYERS in {__file__}"
    return max(matches)[1]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, targets in graph().items() for b in targets
              if layer(b) > layer(a)]
    assert not upward, "\n".join(sorted(upward))


def test_imports_form_no_cycle() -> None:
    edges = graph()
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        path.append(name)
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[name] = "done"
        return None

    for name in sorted(edges):
        if name not in state and (cycle := visit(name)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_checks_see_what_they_check() -> None:
    edges = graph()
    assert "sketchstory.pipeline.runner" in edges["sketchstory.commands.generate"]  # an import inside a function
    assert "sketchstory.models" in edges["sketchstory.pipeline.stage2"]
    assert layer("sketchstory.models.specs") == 2 and layer("sketchstory") == 0 and layer("sketchstory.cli") == 8
