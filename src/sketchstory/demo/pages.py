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

This is training only. At inference MAGA lets a panel attend to earlier panels' keys and values
with the stock processors' arithmetic; no weights or processors from here are shipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0


class PageAttention:
    """``attn1`` processor: batch items 2i and 2i+1 are a page; where ``joint[i]``, each panel's
    queries attend to both panels' keys/values, otherwise to their own only."""

    def __init__(self) -> None:
        self.joint: torch.Tensor | None = None  # (pages,) bool, set before each UNet call

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or self.joint is None or not bool(self.joint.any()):
            return AttnProcessor2_0()(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        batch, n, _ = hidden_states.shape  # the UNet's attn1 gets (batch, tokens, channels)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        d = k.shape[-1] // attn.heads
        q, k, v = (x.view(batch, n, attn.heads, d).transpose(1, 2) for x in (q, k, v))
        partner = torch.arange(batch).view(-1, 2).flip(1).reshape(-1)
        keys, values = torch.cat([k, k[partner]], 2), torch.cat([v, v[partner]], 2)
        blocked = (~self.joint).repeat_interleave(2)  # panels of unpaired pages ignore their partner
        mask = torch.zeros(batch, 1, 1, 2 * n, dtype=q.dtype)
        mask[blocked, :, :, n:] = float("-inf")
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        out = out.transpose(1, 2).reshape(batch, n, attn.heads * d)
        return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor


def install_page_attention(unet: torch.nn.Module) -> PageAttention:
    """One shared PageAttention on every ``attn1``; cross-attention keeps the stock processor."""
    page = PageAttention()
    unet.set_attn_processor({name: page if name.endswith("attn1.processor") else AttnProcessor2_0()
                             for name in unet.attn_processors})
    return page


def remove_page_attention(unet: torch.nn.Module) -> None:
    unet.set_attn_processor(AttnProcessor2_0())
