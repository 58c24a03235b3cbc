"""The condition bias weights memory panels among themselves; the gain scales the memory as a whole."""

from __future__ import annotations

import math

import pytest
import torch

from sketchstory.attention.maga import MAGAConfig, MAGARun
from sketchstory.attention.policy import parse_policy


def _run(strength: float, gain: float = 0.0, conditions: dict[int, torch.Tensor] | None = None) -> MAGARun:
    run = MAGARun(MAGAConfig(policy=parse_policy("all"), first_layer=0, strength=strength, gain=gain))
    run.conditions = conditions or {n: torch.ones(8) for n in range(4)}
    return run


def _memory_mass(run: MAGARun, n: int = 3, tokens: int = 16) -> float:
    """Attention mass on memory tokens for one query whose logits are all equal (bias alone decides)."""
    sources = run.config.policy.sources(n)
    logits = torch.cat([torch.zeros(tokens)] + [torch.full((tokens,), b) for b in run.bias(n, sources)])
    return float(logits.softmax(0)[tokens:].sum())


@pytest.mark.parametrize("strength", [0.0, 1.0, 3.0, 10.0])
def test_equal_similarities_leave_the_memory_mass_alone(strength):
    assert _run(strength).bias(3, (0, 1, 2)) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert _memory_mass(_run(strength)) == pytest.approx(0.75, abs=1e-6)  # 3 memory panels of 4 token sets


def test_unequal_similarities_reweight_sources_but_keep_their_geometric_mean():
    torch.manual_seed(0)
    conds = {n: torch.randn(8) for n in range(4)}
    bias = _run(3.0, conditions=conds).bias(3, (0, 1, 2))
    assert max(bias) > 0 > min(bias)  # the most similar panel gains, the least similar loses
    assert sum(bias) <= 1e-6  # log(k p) sums to <= 0 (Jensen): never a boost of the whole memory


def test_gain_multiplies_the_memory_weight_by_e_to_the_gain():
    base, boosted = _memory_mass(_run(0.0)), _memory_mass(_run(0.0, gain=math.log(3.0)))
    # own weight 1, memory weight 3 -> 9 after the gain: masses 3/4 -> 9/10
    assert base == pytest.approx(0.75) and boosted == pytest.approx(0.9)


def test_gain_is_a_setting_on_the_command_line():
    import argparse

    from sketchstory.commands.settings import add_settings_args, settings_overrides

    parser = argparse.ArgumentParser()
    add_settings_args(parser)
    assert settings_overrides(parser.parse_args(["--maga-gain", "-1.5"]))["maga.gain"] == -1.5
