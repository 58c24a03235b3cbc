"""The correspondence diagnostic measures MAGA as it runs: shares in [0, 1], and the gain adds memory mass."""

from __future__ import annotations

import pytest

from sketchstory.demo.correspondence import describe, run_probe
from sketchstory.models import DEMO_DIR, load, resolve_spec


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason="demo weights not present")
def test_the_probe_reports_memory_mass_and_precision_per_layer_and_the_gain_raises_the_mass() -> None:
    components = load(resolve_spec("demo"))
    plain, more = (run_probe(components, n_stories=1, gain=g) for g in (0.0, 4.0))
    assert set(plain["attention"]) == set(more["attention"]) and any("(16x16)" in k for k in plain["attention"])
    for result in (plain, more):
        for cell in result["attention"].values():
            assert 0.0 < cell["memory_mass"] < 1.0 and 0.0 <= cell["precision"] <= 1.0
        assert 0.0 <= result["score"] <= 1.0 and result["hidden_de_median"] >= 0.0
    assert all(more["attention"][k]["memory_mass"] > plain["attention"][k]["memory_mass"] for k in plain["attention"])
    assert "| layer 0 (16x16), steps 0-9 |" in describe(plain)
    assert all(v is None or 0.0 <= v <= 1.0 for v in plain["hidden_within_threshold_by_size"].values())
