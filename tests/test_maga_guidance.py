"""Memory guidance: the unconditional branch reads less memory, so classifier-free guidance amplifies it."""

from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F

from sketchstory.attention.maga import MAGAConfig, MAGARun, MAGAState
from sketchstory.attention.memory import MemoryBank
from sketchstory.attention.policy import parse_policy
from sketchstory.story import MagaSettings

HEADS, TOKENS, DIM = 2, 16, 8


def _attend(guidance: float, branches: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Panel 1's output reading panel 0 from the memory, and its plain attention, for one random layer."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(branches, HEADS, TOKENS, DIM, generator=gen) for _ in range(3))
    config = MAGAConfig(policy=parse_policy("all"), first_layer=0, start_step=0, gain=1.0, memory_guidance=guidance)
    kept = config.memory_branches(branches)  # as panel 0 would have written them
    bank = MemoryBank()
    bank.put(0, 0, 0, *(torch.randn(branches, HEADS, TOKENS, DIM, generator=gen)[branches - kept:] for _ in range(2)))
    run = MAGARun(config, bank)
    run.state = MAGAState(step=0, panels=(1,), branches=branches, latent_hw=(4, 4))
    return run.attend(0, q, k, v), F.scaled_dot_product_attention(q, k, v)


def test_full_guidance_leaves_the_unconditional_branch_plain_and_the_conditional_one_as_it_was():
    thesis, plain = _attend(0.0)
    guided, _ = _attend(1.0)
    torch.testing.assert_close(guided[0], plain[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(guided[1], thesis[1], rtol=0, atol=1e-6)
    assert (thesis[0] - plain[0]).abs().amax() > 0.05  # the memory did change the unconditional branch


def test_partial_guidance_blends_the_unconditional_branch():
    thesis, plain = _attend(0.0)
    half, _ = _attend(0.25)
    torch.testing.assert_close(half[0], 0.75 * thesis[0] + 0.25 * plain[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(half[1], thesis[1], rtol=0, atol=1e-6)


def test_without_classifier_free_guidance_it_changes_nothing():
    torch.testing.assert_close(_attend(1.0, branches=1)[0], _attend(0.0, branches=1)[0], rtol=0, atol=0)


def test_a_setting_left_out_of_story_files_at_its_default():
    assert "memory_guidance" not in MagaSettings().model_dump()  # old stories and their fingerprints unchanged
    assert MagaSettings(memory_guidance=1.0).model_dump()["memory_guidance"] == 1.0
    with pytest.raises(ValueError):
        MagaSettings(memory_guidance=1.5)


def test_memory_guidance_on_the_command_line():
    from sketchstory.commands.settings import add_settings_args, settings_overrides

    parser = argparse.ArgumentParser()
    add_settings_args(parser)
    assert settings_overrides(parser.parse_args(["--memory-guidance", "0.5"]))["maga.memory_guidance"] == 0.5


def test_with_the_subject_mask_only_the_subject_reads_the_memory():
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, HEADS, TOKENS, DIM, generator=gen) for _ in range(3))
    bank = MemoryBank()
    bank.put(0, 0, 0, *(torch.randn(1, HEADS, TOKENS, DIM, generator=gen) for _ in range(2)))  # the conditional branch
    run = MAGARun(MAGAConfig(policy=parse_policy("all"), first_layer=0, start_step=0, gain=4.0, subject_mask=True,
                             memory_guidance=1.0), bank)
    subject = torch.zeros(4, 4, dtype=torch.bool)
    subject[1:3, 1:3] = True  # tokens 5, 6, 9, 10 of the 4x4 grid
    run.subject_masks = {0: torch.ones(4, 4, dtype=torch.bool), 1: subject}
    run.state = MAGAState(step=0, panels=(1,), branches=2, latent_hw=(4, 4))
    out, plain = run.attend(0, q, k, v), F.scaled_dot_product_attention(q, k, v)
    inside = subject.flatten()
    torch.testing.assert_close(out[:, :, ~inside], plain[:, :, ~inside], rtol=0, atol=1e-6)  # backgrounds their own
    assert (out[1, :, inside] - plain[1, :, inside]).abs().amax() > 0.05  # the subject reads panel 0


def test_full_guidance_keeps_only_the_conditional_branch_in_memory(tiny):
    from sketchstory.attention.budget import layer_shapes, panel_bytes
    from sketchstory.attention.maga import install
    from sketchstory.pipeline.stage2 import PanelJob, Sampling, denoise, encode_text

    sampling = Sampling(32, 32, 3, 5.0, 1.0, "ddim")
    before = dict(tiny.unet.attn_processors)
    try:
        uncond, _ = encode_text(tiny, "")
        cond, _ = encode_text(tiny, "a wizard")
        job = PanelJob(0, 7, cond, uncond, None)
        sizes = {}
        for w in (0.0, 0.5, 1.0):
            run = MAGARun(MAGAConfig(policy=parse_policy("all"), first_layer=3, start_step=1, memory_guidance=w))
            install(tiny.unet, run)
            denoise(tiny, [job], sampling, run, write=frozenset({0}))
            kept = run.config.memory_branches(2)
            shapes = layer_shapes(tiny.unet, (16, 16))
            assert run.memory.nbytes() == panel_bytes(shapes, 3, sampling.steps - 1, kept, 4, None)  # estimate
            sizes[w] = run.memory.nbytes()
    finally:
        tiny.unet.set_attn_processor(before)
    assert sizes[1.0] * 2 == sizes[0.5] == sizes[0.0]  # the unconditional branch is read by no one at 1
