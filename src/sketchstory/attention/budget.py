"""A memory budget for the MAGA bank: the token budget that keeps it under a byte cap.

The bank holds, per retained panel, keys and values of every MAGA layer and step. Its size is
known before the run from the UNet's layer shapes, so a cap in bytes becomes a per-panel token
budget: ``bytes = retained panels * steps * branches * 2 * sum_l min(tokens_l, budget) * channels_l
* element size``. The result depends only on the story's settings and length, never on the
execution mode, so every mode still picks the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sketchstory.attention.layers import self_attention_layers
from sketchstory.attention.policy import MemoryPolicy
from sketchstory.attention.tracks import Tracks


@dataclass(frozen=True)
class LayerShape:
    tokens: int
    channels: int


def layer_shapes(unet: torch.nn.Module, latent_hw: tuple[int, int]) -> list[LayerShape]:
    """Token count and key width of each self-attention layer, in execution order."""
    modules = dict(unet.named_modules())
    n_down = len(unet.down_blocks)
    shapes = []
    for name in self_attention_layers(list(unet.attn_processors)):
        block, _, rest = name.partition(".")
        index = int(rest.split(".")[0]) if block != "mid_block" else n_down - 1
        level = index if block != "up_blocks" else n_down - 1 - index
        h, w = latent_hw[0] >> level, latent_hw[1] >> level
        attn = modules[name.removesuffix(".processor")]
        shapes.append(LayerShape(h * w, attn.to_k.out_features))
    return shapes


def retained_panels(policy: MemoryPolicy | Tracks, n_panels: int) -> int:
    """Most panels the bank holds at once: bounded policies need at most anchors + span + 1."""
    if isinstance(policy, Tracks):
        return policy.retained(n_panels)
    if policy.all:
        return max(n_panels - 1, 0)
    return len(policy.anchors) + policy.span + 1


def kept_branches(branches: int, memory_guidance: float) -> int:
    """Guidance branches whose keys/values the memory keeps: those that read it (not the unconditional one at
    memory guidance 1, see attention.maga)."""
    return 1 if branches == 2 and memory_guidance == 1 else branches


def panel_bytes(shapes: list[LayerShape], first_layer: int, maga_steps: int, branches: int, element: int,
                token_budget: int | None) -> int:
    per_step = sum(min(s.tokens, token_budget or s.tokens) * s.channels for s in shapes[first_layer:])
    return 2 * branches * maga_steps * element * per_step


def fit_token_budget(shapes: list[LayerShape], first_layer: int, maga_steps: int, branches: int, element: int,
                     retained: int, max_bytes: int, token_budget: int | None) -> int | None:
    """The largest token budget (at most ``token_budget``) whose bank fits ``max_bytes``."""

    def total(budget: int | None) -> int:
        return retained * panel_bytes(shapes, first_layer, maga_steps, branches, element, budget)

    if total(token_budget) <= max_bytes:
        return token_budget
    lo, hi = 1, min(token_budget or max(s.tokens for s in shapes), max(s.tokens for s in shapes))
    if total(lo) > max_bytes:
        raise ValueError(f"maga.memory_budget_mb is too small: even 1 token per layer needs {total(1) / 2**20:.1f} MiB "
                         "for this policy; raise the budget, shorten the memory window, or start MAGA later")
    while lo < hi:  # largest budget that fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total(mid) <= max_bytes else (lo, mid - 1)
    return lo
