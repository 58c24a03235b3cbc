"""Which tokens of a memory panel are shared: the token budget and the subject mask.

Both are derived from (panel, layer, step) and the panel's sketch only, never from a running
random state, so sequential, batched and incremental runs pick exactly the same tokens.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F


def layer_grid(num_tokens: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of a layer's token grid, from its token count and the latent size."""
    h, w = latent_hw
    factor = math.isqrt(h * w // num_tokens)
    if factor < 1 or (h // factor) * (w // factor) != num_tokens:
        raise ValueError(f"{num_tokens} tokens do not tile a {h}x{w} latent")
    return h // factor, w // factor


def _seed(panel: int, layer: int, step: int) -> int:
    digest = hashlib.blake2b(f"{panel}/{layer}/{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def subject_tokens(subject_mask: torch.Tensor, num_tokens: int, latent_hw: tuple[int, int]) -> torch.Tensor | None:
    """Indices of a layer's tokens that cover any latent pixel of the (H, W) bool subject mask; None when
    they are none or all of them (a mask that tells nothing at this resolution)."""
    pooled = F.adaptive_max_pool2d(subject_mask[None, None].float(), layer_grid(num_tokens, latent_hw))[0, 0]
    fg = torch.nonzero(pooled.flatten() > 0).flatten()
    return fg if 0 < fg.numel() < num_tokens else None


def select_tokens(
    panel: int,
    layer: int,
    step: int,
    num_tokens: int,
    latent_hw: tuple[int, int],
    budget: int | None,
    subject_mask: torch.Tensor | None,
) -> torch.Tensor | None:
    """Indices of the panel's tokens to share at this layer and step; None means all of them.

    ``subject_mask`` is a (H, W) bool mask at latent resolution; a token is a subject token when
    any latent pixel it covers is. If the mask covers no token at this resolution, all tokens stay.
    """
    candidates = None if subject_mask is None else subject_tokens(subject_mask, num_tokens, latent_hw)
    count = num_tokens if candidates is None else candidates.numel()
    if budget is None or budget >= count:
        return candidates
    gen = torch.Generator().manual_seed(_seed(panel, layer, step))
    pick = torch.randperm(count, generator=gen)[:budget].sort().values
    return pick if candidates is None else candidates[pick]
