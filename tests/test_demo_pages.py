"""Page attention (demo training): what each panel of a two-panel page attends to."""

from __future__ import annotations

import math

import pytest
import torch

from sketchstory.attention.maga import MAGAConfig, MAGARun, MAGAState
from sketchstory.attention.policy import parse_policy
from sketchstory.demo.pages import PageRun, install_page_attention, match_loss, remove_page_attention


@pytest.fixture
def unet(tiny):
    before = dict(tiny.unet.attn_processors)
    yield tiny.unet
    tiny.unet.set_attn_processor(before)


def _inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, 8, 8, generator=gen)
    text = torch.randn(batch, 77, 32, generator=gen)
    return x, torch.full((batch,), 500), text


@torch.no_grad()
def test_unpaired_pages_and_twin_panels_are_plain_attention(unet):
    x, t, text = _inputs(4)
    remove_page_attention(unet)
    plain = unet(x, t, text).sample
    page = install_page_attention(unet)
    page.joint = torch.tensor([False, False])
    assert torch.allclose(unet(x, t, text).sample, plain, atol=1e-5)
    # A page of two identical panels: attending to [K; K] averages the same values twice.
    twins = torch.cat([x[:1], x[:1]]), t[:2], torch.cat([text[:1], text[:1]])
    page.joint = torch.tensor([True])
    assert torch.allclose(unet(*twins).sample, plain[:1].expand(2, -1, -1, -1), atol=1e-5)


def test_joint_page_panel_one_attends_as_maga_makes_it():
    """In one layer, panel 1 of a joint page attends to its own and panel 0's tokens, which is
    MAGA's `all` in batched mode; panel 0 also sees panel 1 (MAGA's panel 0 sees only itself)."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 16, 8, generator=gen) for _ in range(3))  # (panels, heads, tokens, dim)
    page = PageRun(MAGAConfig(policy=parse_policy("none"), first_layer=0), joint=torch.tensor([True]))
    run = MAGARun(MAGAConfig(policy=parse_policy("all"), first_layer=0, start_step=0))
    run.state = MAGAState(step=0, panels=(0, 1), branches=1, latent_hw=(4, 4))
    paged, maga = page.attend(0, q, k, v), run.attend(0, q, k, v)
    assert torch.allclose(paged[1], maga[1], atol=1e-6)
    assert not torch.allclose(paged[0], maga[0], atol=1e-3)


def test_match_loss_rewards_attention_on_the_targets_and_ignores_lone_panels():
    # one joint page (items 0, 1), 4 tokens per panel; every query's targets: tokens 0 of both panels
    targets = torch.zeros(2, 4, 8, dtype=torch.bool)
    targets[:, :, [0, 4]] = True
    queries, character = torch.ones(2, 4, dtype=torch.bool), torch.zeros(2, 4, dtype=torch.bool)
    on_targets = torch.full((2, 1, 4, 8), -9.0)
    on_targets[..., [0, 4]] = 0.0
    uniform = torch.zeros(2, 1, 4, 8)
    sharp, flat = (match_loss(x.log_softmax(-1), targets, queries, character) for x in (on_targets, uniform))
    assert float(sharp) < 1e-3 and float(flat) == pytest.approx(-math.log(2 / 8), abs=1e-5)
    # the character's queries count again, as much as all the others together
    character[:, 0] = True
    assert float(match_loss(uniform.log_softmax(-1), targets, queries, character)) == pytest.approx(-2 * math.log(2 / 8))
    assert float(match_loss(uniform.log_softmax(-1), targets, ~queries, ~queries)) == 0.0


@pytest.mark.parametrize("target", ["colour", "character"])
def test_match_loss_training_step_has_finite_gradients(unet, target):
    x, t, text = _inputs(4)
    page = install_page_attention(unet)
    page.joint, page.match_weight = torch.tensor([True, True]), 1.0
    character = torch.zeros(4, 1, 8, 8)
    character[:2, :, 2:6, 2:6] = 1.0  # the second page shows no character: it must add nothing
    page.character, page.match_target = character, target
    page.colour = torch.randint(0, 3, (4, 3, 8, 8)).float() * 60.0
    queries = [p for n, p in unet.named_parameters() if ".attn1.to_q." in n]
    flags = [p.requires_grad for p in queries]
    try:
        for p in queries:
            p.requires_grad_(True)
            p.grad = None
        unet(x, t, text)
        loss = torch.stack(page.match_losses).mean()
        loss.backward()
        assert loss.item() > 0
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in queries)
    finally:
        for p, flag in zip(queries, flags, strict=True):
            p.requires_grad_(flag)
            p.grad = None


def test_match_loss_partner_share_asks_for_twins_across_the_page():
    targets = torch.zeros(2, 4, 8, dtype=torch.bool)
    targets[:, :, [0, 4]] = True  # each query's twins: token 0 of its own panel and token 0 of the other
    queries, character = torch.ones(2, 4, dtype=torch.bool), torch.zeros(2, 4, dtype=torch.bool)
    own_only, both = torch.full((2, 1, 4, 8), -9.0), torch.full((2, 1, 4, 8), -9.0)
    own_only[..., 0] = 0.0
    both[..., [0, 4]] = 0.0
    assert float(match_loss(own_only.log_softmax(-1), targets, queries, character)) < 1e-3  # indifferent
    assert float(match_loss(own_only.log_softmax(-1), targets, queries, character, 0.5)) > 3.0
    assert float(match_loss(both.log_softmax(-1), targets, queries, character, 0.5)) == pytest.approx(math.log(2), abs=1e-3)
