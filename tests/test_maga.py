"""MAGA's central properties on the tiny models: it reduces to plain attention, and its modes agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionControlNetPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from sketchstory.attention.layers import first_maga_layer, self_attention_layers
from sketchstory.attention.maga import MAGAConfig, MAGAProcessor, MAGARun, MAGAState, install
from sketchstory.attention.policy import parse_policy
from sketchstory.pipeline.stage2 import PanelJob, Sampling, decode, denoise, encode_text, initial_noise

SAMPLING = Sampling(32, 32, 5, 5.0, 1.0, "ddim")
PROMPTS = ["a wizard in a forest", "the wizard finds a hat", "the wizard meets a dragon", "the wizard is crystal"]
TOL = 1e-4  # seq vs batched differ by ~3e-5 (SDPA/conv kernels vary with batch size)


def make_jobs(tiny, n=4, control_every=True):
    uncond, _ = encode_text(tiny, "")
    jobs, conds = [], {}
    gen = torch.Generator().manual_seed(1)
    for i in range(n):
        cond, pooled = encode_text(tiny, PROMPTS[i % 4])
        conds[i] = pooled
        control = (torch.rand(1, 3, 32, 32, generator=gen) > 0.8).float() if control_every or i != 2 else None
        jobs.append(PanelJob(i, 100 + i, cond, uncond, control))
    return jobs, conds


def new_run(tiny, conds, memory="all", **kw):
    # SD1.5's start layer 8 is the tiny UNet's layer 3 of 6 (see test_layers_counted_in_execution_order).
    run = MAGARun(MAGAConfig(policy=parse_policy(memory), first_layer=3, start_step=1, **kw), conditions=conds)
    install(tiny.unet, run)
    return run


def sequential(tiny, jobs, run):
    return torch.cat([denoise(tiny, [j], SAMPLING, run, write=frozenset({j.index})) for j in jobs])


@pytest.fixture(autouse=True)
def restore(tiny):
    before = dict(tiny.unet.attn_processors)
    yield
    tiny.unet.set_attn_processor(before)


def test_layers_counted_in_execution_order(tiny):
    layers = self_attention_layers(list(tiny.unet.attn_processors))
    assert [n.split(".")[0] for n in layers] == ["down_blocks"] * 2 + ["mid_block"] + ["up_blocks"] * 3
    assert first_maga_layer(8, 16) == 8 and first_maga_layer(8, len(layers)) == 3


def test_empty_memory_equals_diffusers_attention_on_every_layer(tiny):
    run = MAGARun(MAGAConfig(policy=parse_policy("all"), first_layer=0, start_step=0))
    modules = dict(tiny.unet.named_modules())
    for i, name in enumerate(self_attention_layers(list(tiny.unet.attn_processors))):
        attn = modules[name.removesuffix(".processor")]
        x = torch.randn(2, 64, attn.to_q.in_features)
        attn.set_processor(AttnProcessor2_0())
        expected = attn(x)
        attn.set_processor(MAGAProcessor(run, i))
        run.state = MAGAState(step=0, panels=(0,), branches=2, latent_hw=(8, 8))
        torch.testing.assert_close(attn(x), expected, rtol=0, atol=1e-6)
    assert run.calls == 6  # MAGA code really ran, on every layer


@pytest.mark.parametrize("kw", [{}, {"strength": 2.0}, {"token_budget": 7, "memory": "anchors:0+window:1"},
                                {"subject_mask": True, "memory": "decay:0.5"},
                                {"memory_guidance": 1.0}, {"memory_guidance": 0.5, "memory": "anchors:0"}])
def test_sequential_equals_batched(tiny, kw):
    jobs, conds = make_jobs(tiny)
    masks = {i: torch.zeros(16, 16, dtype=torch.bool) for i in range(4)}
    for i, m in masks.items():
        m[2 + i : 10 + i, 3:12] = True
    seq_run = new_run(tiny, conds, **kw)
    seq_run.subject_masks = masks
    seq = sequential(tiny, jobs, seq_run)
    bat_run = new_run(tiny, conds, **kw)
    bat_run.subject_masks = masks
    bat = denoise(tiny, jobs, SAMPLING, bat_run)
    torch.testing.assert_close(seq, bat, rtol=0, atol=TOL)
    plain_run = new_run(tiny, conds, memory="none")
    plain = sequential(tiny, jobs, plain_run)
    assert seq_run.calls > 0 and bat_run.calls > 0
    # MAGA must change the later panels (else this test proves nothing), never the first one.
    torch.testing.assert_close(seq[0], plain[0], rtol=0, atol=TOL)
    assert (seq[1:] - plain[1:]).abs().amax() > 50 * TOL


def test_tolerance_catches_a_panel_reading_the_wrong_memory(tiny):
    jobs, conds = make_jobs(tiny)
    bat = denoise(tiny, jobs, SAMPLING, new_run(tiny, conds))
    run = new_run(tiny, conds)
    right = run.memory.get
    # From panel 2 on, the entry of panel 0 is swapped for panel 1's: one wrong memory panel.
    run.memory.get = lambda panel, layer, step: right(1 if panel == 0 and run.state.panels[0] >= 2 else panel, layer, step)
    wrong = sequential(tiny, jobs, run)
    assert (wrong[2:] - bat[2:]).abs().amax() > 20 * TOL


def test_chunked_batches_equal_sequential(tiny):
    jobs, conds = make_jobs(tiny)
    seq = sequential(tiny, jobs, new_run(tiny, conds))
    run = new_run(tiny, conds)
    first = denoise(tiny, jobs[:2], SAMPLING, run, write=frozenset({0, 1}))
    second = denoise(tiny, jobs[2:], SAMPLING, run)
    torch.testing.assert_close(torch.cat([first, second]), seq, rtol=0, atol=TOL)


def test_maga_off_equals_diffusers_controlnet_pipeline(tiny):
    jobs, _ = make_jobs(tiny, 1)
    ours = decode(tiny, denoise(tiny, jobs, SAMPLING))
    pipe = StableDiffusionControlNetPipeline(
        vae=tiny.vae, text_encoder=tiny.text_encoder, tokenizer=tiny.tokenizer, unet=tiny.unet,
        controlnet=tiny.controlnet, scheduler=tiny.scheduler("ddim"), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    noise = initial_noise(jobs[0].seed, (1, 4, 16, 16), tiny)
    image = (jobs[0].control[0].permute(1, 2, 0).numpy() * 255).astype("uint8")
    theirs = pipe(PROMPTS[0], image=Image.fromarray(image), height=32, width=32, num_inference_steps=5,
                  guidance_scale=5.0, latents=noise, output_type="pil").images[0]
    diff = np.abs(np.asarray(ours[0], np.int16) - np.asarray(theirs, np.int16)).max()
    assert diff <= 1  # uint8 rounding


def test_memory_bytes_follow_policy_and_budget(tiny):
    jobs, conds = make_jobs(tiny, 4)
    sizes = {}
    for memory, budget in [("all", None), ("window:1", None), ("window:1", 5)]:
        run = new_run(tiny, conds, memory=memory, token_budget=budget)
        per_panel = []
        for j in jobs:
            before = run.memory.nbytes()
            denoise(tiny, [j], SAMPLING, run, write=frozenset({j.index}))
            per_panel.append(run.memory.nbytes() - before)
            run.memory.drop(run.memory.panels() - set(run.config.policy.sources(j.index + 1)))  # as the runner does
        assert len(set(per_panel)) == 1  # every panel costs the same
        sizes[(memory, budget)] = (per_panel[0], run.memory.peak_bytes, run.memory.panels())
    full, peak_all, _ = sizes[("all", None)]
    assert peak_all == 4 * full  # the thesis's policy keeps everything
    _, peak_window, kept = sizes[("window:1", None)]
    assert peak_window == 2 * full and kept == {3}  # bounded whatever the story length
    budget, _, _ = sizes[("window:1", 5)]
    assert budget < full / 10  # 5 of 16..256 tokens per layer


def test_layer_shapes_predict_the_bank_and_a_byte_cap_holds(tiny):
    from sketchstory.attention.budget import fit_token_budget, layer_shapes, panel_bytes, retained_panels

    shapes = layer_shapes(tiny.unet, (16, 16))
    assert [s.tokens for s in shapes] == [256, 256, 64, 256, 256, 256]
    jobs, conds = make_jobs(tiny, 3)
    run = new_run(tiny, conds, memory="all", token_budget=20)
    sequential(tiny, jobs, run)
    steps = SAMPLING.steps - run.config.start_step
    assert run.memory.nbytes() == 3 * panel_bytes(shapes, run.config.first_layer, steps, 2, 4, 20)
    cap = 3 * panel_bytes(shapes, run.config.first_layer, steps, 2, 4, 50) - 1
    budget = fit_token_budget(shapes, run.config.first_layer, steps, 2, 4, retained_panels(run.config.policy, 4), cap, None)
    assert budget == 49  # the largest that fits under the cap
    capped = new_run(tiny, conds, memory="all", token_budget=budget)
    four = make_jobs(tiny, 4)[0]
    for j in four:  # as the runner does: the last panel is read by no one, so it is not kept
        denoise(tiny, [j], SAMPLING, capped, write=frozenset({j.index}) if j is not four[-1] else frozenset())
    assert 0.9 * cap < capped.memory.peak_bytes <= cap
