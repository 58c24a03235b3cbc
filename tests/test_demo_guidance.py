"""The guidance probe: the memory's change to both guidance branches, and what guidance makes of it."""

from __future__ import annotations

import math

import pytest

from sketchstory.demo.guidance import describe, run_probe
from sketchstory.models import DEMO_DIR, load, resolve_spec


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason="demo weights not present")
def test_on_the_demo_model_the_memory_moves_both_branches_alike_so_conditional_only_reading_is_amplified() -> None:
    result = run_probe(load(resolve_spec("demo")), n_stories=1)
    assert list(result["steps"]) == ["0-0", "1-3", "4-19"]
    for r in result["steps"].values():
        assert all(math.isfinite(v) for v in r.values())
        assert 0.5 < r["ratio"] < 2.0 and r["cosine"] > 0.8  # alike: guidance cannot amplify their difference
        assert r["amplification"] > 2.0  # reading in the conditional branch only: guidance amplifies the memory
    assert "| 0-0 |" in describe(result)
