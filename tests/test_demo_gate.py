"""The gate's two instruments: attention sharpness and the out-copy upper bound."""

from __future__ import annotations

import pytest
import torch

from sketchstory.attention.maga import MAGAConfig, MAGAState
from sketchstory.attention.policy import MemoryPolicy
from sketchstory.demo.gate import _ProbeRun, describe


def _run() -> _ProbeRun:
    run = _ProbeRun(MAGAConfig(policy=MemoryPolicy(), first_layer=0, start_step=0))
    run.state = MAGAState(step=3, panels=(0,), branches=1, latent_hw=(4, 4))
    return run


def test_sharpness_is_one_for_uniform_attention_and_one_over_n_for_a_match():
    run = _run()
    k, v = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 16, 8)
    run.attend(0, torch.zeros(1, 2, 16, 8), k, v)  # zero queries: every key alike
    assert run.sharpness[0] == [pytest.approx(1.0)]
    keys = torch.eye(16, 8).repeat(1, 2, 1, 1) * 100.0
    run.attend(1, keys.clone(), keys, v)  # each of the first 8 queries matches one key
    assert run.sharpness[1][0] < 0.6 and run.tokens[1] == 16


def test_copy_mode_gives_panel_one_panel_zeros_output():
    run = _run()
    q, k, v = (torch.randn(1, 2, 16, 8) for _ in range(3))
    first = run.attend(0, q, k, v)
    run.state = MAGAState(step=3, panels=(1,), branches=1, latent_hw=(4, 4))
    run.copy = True
    assert torch.equal(run.attend(0, *(torch.randn(1, 2, 16, 8) for _ in range(3))), first)
    run.copy = False
    assert not torch.equal(run.attend(0, *(torch.randn(1, 2, 16, 8) for _ in range(3))), first)


def test_verdict_names_both_criteria():
    result = {"passed": False, "stories": 2, "gated_layers": [5, 6], "sharpness": 0.9, "sharpness_pass": False,
              "delta_e_plain": 40.0, "delta_e_out_copy": 39.0, "reduction": 0.025, "reduction_pass": False,
              "sharpness_per_layer": {5: 0.9, 6: 0.9}}
    text = describe(result)
    assert text.startswith("gate FAILED") and "0.900" in text and "40.0 -> 39.0" in text
