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

Matching can also be taught directly (``match_weight``): on joint pages, each query is pulled
towards its twins, the cells of both panels that show its colour in the clean images (or, with
``match_target="character"``, the character's queries towards both characters), a cross-entropy
on the head-averaged attention mass. The denoising loss alone teaches it too slowly: at 16x16 the
logits start flat, so the gradient that would make them selective is tiny (the first page run:
attention lift 1 -> 2 at 16x16 in 4,000 steps). The targets come from the data (the world's
images and masks); what the matched tokens carry across is still learnt by the denoising loss.

This is training only, and it is not MAGA's memory: both panels are denoised together at the same
noise level and see each other (MAGA's panels see only earlier ones, recorded at each step). It
reuses MAGA's processor plumbing (projections, heads) with its own attention rule. Nothing from
here is shipped: at inference the model has the stock processors, or MAGA's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0

from sketchstory.attention.maga import MAGAConfig, MAGAProcessor, MAGARun
from sketchstory.attention.policy import MemoryPolicy

COLOUR_BIN = 24.0  # RGB levels per bin when cells are grouped by colour


@dataclass
class PageRun(MAGARun):
    """Attention for the ``attn1`` processors during training: batch items 2i and 2i+1 are a page;
    where ``joint[i]``, each panel's queries attend to both panels' keys/values, else to their own."""

    joint: torch.Tensor | None = None  # (pages,) bool, set before each UNet call
    character: torch.Tensor | None = None  # (batch, 1, h, w) character cover of each latent cell
    colour: torch.Tensor | None = None  # (batch, 3, h, w) mean clean-image colour of each latent cell
    match_weight: float = 0.0
    match_target: str = "colour"  # "colour": every query; "character": the character's queries only
    match_partner: float = 0.0  # share of a query's twin mass asked on the partner panel (match_loss)
    match_losses: list[torch.Tensor] = field(default_factory=list)  # one per attn1 call, then cleared

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.joint is None or not bool(self.joint.any()):
            return F.scaled_dot_product_attention(q, k, v)
        batch, _, n, _ = k.shape  # (batch, heads, tokens, dim)
        partner = torch.arange(batch).view(-1, 2).flip(1).reshape(-1)
        keys, values = torch.cat([k, k[partner]], 2), torch.cat([v, v[partner]], 2)
        mask = torch.zeros(batch, 1, 1, 2 * n, dtype=q.dtype)
        mask[(~self.joint).repeat_interleave(2), :, :, n:] = float("-inf")  # unpaired: own tokens only
        if not (self.match_weight and self.character is not None and torch.is_grad_enabled()):
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        logp = (q @ keys.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask).log_softmax(-1)
        self.match_losses.append(match_loss(logp, *self._targets(n, partner), self.match_partner))
        return logp.exp() @ values

    def _targets(self, n: int, partner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """At this layer's resolution: which keys (own panel, then partner) each query should find,
        (batch, n, 2n); and the queries taught, all and the character's, (batch, n) each."""
        side = math.isqrt(n)
        joint = self.joint.repeat_interleave(2)[:, None]
        own = (F.adaptive_avg_pool2d(self.character, (side, side)).flatten(1) > 0.5) & joint
        if self.match_target == "character":
            both = torch.cat([own, own[partner]], 1)
            return own[:, :, None] & both[:, None, :], own, torch.zeros_like(own)
        # the twins of a cell: the cells of both panels that show its colour (palette steps are >= 43 apart)
        label = F.adaptive_avg_pool2d(self.colour.float(), (side, side)).div(COLOUR_BIN).round().flatten(2)
        both = torch.cat([label, label[partner]], 2)  # (batch, 3, 2n)
        same = (label[:, :, :, None] == both[:, :, None, :]).all(1)
        return same, joint.expand(-1, n), own


def install_page_attention(unet: torch.nn.Module) -> PageRun:
    """MAGA's processor plumbing on every ``attn1``, driven by a PageRun; returns the run."""
    page = PageRun(MAGAConfig(policy=MemoryPolicy(), first_layer=0))
    names = [n for n in unet.attn_processors if n.endswith("attn1.processor")]
    unet.set_attn_processor({n: MAGAProcessor(page, names.index(n)) if n in names else AttnProcessor2_0()
                             for n in unet.attn_processors})
    return page


def remove_page_attention(unet: torch.nn.Module) -> None:
    unet.set_attn_processor(AttnProcessor2_0())


def match_loss(logp: torch.Tensor, targets: torch.Tensor, queries: torch.Tensor, character: torch.Tensor,
               partner_share: float = 0.0) -> torch.Tensor:
    """-log of the head-averaged attention mass each taught query puts on its targets, averaged over
    ``queries`` plus averaged over ``character`` (so the character, a few % of the cells, counts
    as much as the rest); 0 when nothing is taught. ``logp``: (batch, heads, n, 2n).

    With ``partner_share`` s > 0, a query whose targets include the partner panel's asks for a
    share s of that mass there: -(1-s) log m_own - s log m_partner. Without it, attention can find
    its twins in its own panel alone and carry nothing across (the page probe goes to 0)."""
    items = queries.any(1)
    if not bool(items.any()):
        return logp.new_zeros(())
    logp, targets, queries, character = logp[items], targets[items], queries[items], character[items]

    def nll(keys: torch.Tensor) -> torch.Tensor:  # (items, n); a finite fill keeps gradients finite
        mass = logp.masked_fill(~keys[:, None], -1e4).logsumexp(-1).exp().mean(1)
        return -mass.clamp_min(1e-6).log()

    loss = nll(targets)
    if partner_share:
        n = logp.shape[2]
        own, across = targets.clone(), targets.clone()
        own[..., n:], across[..., :n] = False, False
        split = (1 - partner_share) * nll(own) + partner_share * nll(across)
        loss = torch.where(own.any(-1) & across.any(-1), split, loss)
    total = loss[queries].mean()
    return total + loss[character].mean() if bool(character.any()) else total
