"""Two-panel pages: how the demo UNet's self-attention learns to match and copy appearance.

SD1.5 learns from natural images full of repeated things that self-attention can find a thing's
twin and copy its look; training-free methods (MAGA among them) rely on that. The toy world has
no repeated things, so the demo model is shown pages: two panels of the same character (same
spoken and hidden colours, different scene, pose and size). The two panels of a page share one
self-attention, as the two halves of one strip image would: each ``attn1`` token attends to the
tokens of both panels. Convolutions, text and ControlNet stay per panel; in a real strip the
coarse convolutions would carry colour across the gutter and leave attention nothing to learn.
A share of captions does not say the body colour, so the only way to draw the second copy right
is to look at the first through self-attention.

This is training only, and it is not MAGA's memory: both panels are denoised together at the same
noise level and see each other (MAGA's panels see only earlier ones, recorded at each step). It
reuses MAGA's processor plumbing (projections, heads) with its own attention rule. Nothing from
here is shipped: at inference the model has the stock processors, or MAGA's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0

from sketchstory.attention.maga import MAGAConfig, MAGAProcessor, MAGARun
from sketchstory.attention.policy import MemoryPolicy


@dataclass
class PageRun(MAGARun):
    """Attention for the ``attn1`` processors during training: batch items 2i and 2i+1 are a page;
    where ``joint[i]``, each panel's queries attend to both panels' keys/values, else to their own."""

    joint: torch.Tensor | None = None  # (pages,) bool, set before each UNet call

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.joint is None or not bool(self.joint.any()):
            return F.scaled_dot_product_attention(q, k, v)
        batch, _, n, _ = k.shape  # (batch, heads, tokens, dim)
        partner = torch.arange(batch).view(-1, 2).flip(1).reshape(-1)
        keys, values = torch.cat([k, k[partner]], 2), torch.cat([v, v[partner]], 2)
        mask = torch.zeros(batch, 1, 1, 2 * n, dtype=q.dtype)
        mask[(~self.joint).repeat_interleave(2), :, :, n:] = float("-inf")  # unpaired: own tokens only
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)


def install_page_attention(unet: torch.nn.Module) -> PageRun:
    """MAGA's processor plumbing on every ``attn1``, driven by a PageRun; returns the run."""
    page = PageRun(MAGAConfig(policy=MemoryPolicy(), first_layer=0))
    names = [n for n in unet.attn_processors if n.endswith("attn1.processor")]
    unet.set_attn_processor({n: MAGAProcessor(page, names.index(n)) if n in names else AttnProcessor2_0()
                             for n in unet.attn_processors})
    return page


def remove_page_attention(unet: torch.nn.Module) -> None:
    unet.set_attn_processor(AttnProcessor2_0())
