"""The MAGA consistency study runs end to end on the bundled demo model."""

from __future__ import annotations

import pytest

from sketchstory.demo.study import CONFIGS, run_study, table
from sketchstory.models import DEMO_DIR


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason="demo weights not present")
def test_study_scores_each_configuration() -> None:
    configs = {k: CONFIGS[k] for k in list(CONFIGS)[:2]}
    study = run_study(1, 2, 100, configs, log=lambda *_: None)
    for result in study["results"].values():
        assert len(result["scores"]) == 1 and 0.0 <= result["mean"] <= 1.0
    assert "| no MAGA |" in table(study)
