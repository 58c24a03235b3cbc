"""The MAGA consistency study runs end to end on the bundled demo model."""

from __future__ import annotations

import pytest

from sketchstory.demo.study import CONFIGS, paired_difference, run_study, table
from sketchstory.models import DEMO_DIR


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason="demo weights not present")
def test_study_scores_each_configuration() -> None:
    configs = {k: CONFIGS[k] for k in list(CONFIGS)[:2]}
    study = run_study(1, 2, 100, configs, log=lambda *_: None)
    for result in study["results"].values():
        assert len(result["scores"]) == 1 and 0.0 <= result["mean"] <= 1.0 and result["delta_e"][0] >= 0.0
    assert "| no MAGA |" in table(study)


def test_paired_difference_interval() -> None:
    same = [0.0, 0.5, 1.0, 0.5]
    assert paired_difference(same, same) == (0.0, 0.0, 0.0)
    d, lo, hi = paired_difference([1.0, 1.0, 0.5, 1.0], [0.0, 0.5, 0.0, 0.5])
    assert d == 0.625 and 0 < lo <= d <= hi <= 1.0
    d, lo, hi = paired_difference([1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0])
    assert d == 0.0 and lo < 0 < hi
