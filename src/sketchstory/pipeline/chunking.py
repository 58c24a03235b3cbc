"""The ``auto`` execution mode: how many panels to denoise in one UNet call, from the free memory.

Batched execution gives the same pixels as sequential (tested) in less time: a chunk of panels is
one UNet call with larger matrix products (on CPU, about half the time per panel). But a chunk
holds every one of its panels' activations at once. ``auto`` takes the largest chunk whose
estimated peak fits in half the free memory (RAM on CPU, VRAM on CUDA), at most ``MAX_CHUNK``
panels, and renders sequentially when not even 2 panels fit. Like the memory budget
(attention.budget), the estimate comes from the UNet's self-attention layer shapes. Attention
scores are not counted: PyTorch's SDPA never materialises them (docs/maga.md, Performance).
"""

from __future__ import annotations

from dataclasses import dataclass

from sketchstory.attention.budget import LayerShape

# Beyond 8 panels a chunk is no faster per panel on CPU (demo model, 64 px, 16 panels: 8.5 CPU s in
# chunks of 8, 8.4 in one chunk of 16, 9.2 in chunks of 4, 14.5 sequential), while its memory keeps growing.
MAX_CHUNK = 8
HEADROOM = 0.5  # share of the free memory a chunk may take: the estimate is rough, and others need some


@dataclass(frozen=True)
class ChunkPlan:
    size: int  # panels per UNet call; 1 renders sequentially
    reason: str


def activation_bytes(shapes: list[LayerShape], first_layer: int, sources: int, token_budget: int | None,
                     branches: int, element: int, routed: bool = False) -> int:
    """Estimated peak activations of one panel in one UNet + ControlNet call.

    Held through the call: the UNet's skip connections, the ControlNet's residuals and a resnet's
    intermediate, about three feature maps per layer. At the widest layer on top: the keys and
    values of the panel and its ``sources`` memory panels (from ``first_layer`` on), and the
    transformer block's tensors: queries, keys, values, output, residual, and the feed-forward's
    GEGLU (8x wide, then 4x), 16 feature maps. ``routed`` (character routing): the attention mask
    over own and memory tokens too, one per panel for both branches (attention.routing).
    """
    held = 3 * sum(s.tokens * s.channels for s in shapes)

    def memory(layer: int, s: LayerShape) -> int:
        return sources * min(s.tokens, token_budget or s.tokens) if layer >= first_layer else 0

    def work(layer: int, s: LayerShape) -> int:
        return 2 * (s.tokens + memory(layer, s)) * s.channels + 16 * s.tokens * s.channels

    mask = max((s.tokens * (s.tokens + memory(i, s)) for i, s in enumerate(shapes) if i >= first_layer), default=0)
    return branches * element * (held + max(work(i, s) for i, s in enumerate(shapes))) + (element * mask if routed else 0)


def chunk_bytes(size: int, panels: int, per_panel: int, bank_panel: int, retained: int) -> int:
    """Estimated peak of denoising ``size`` of ``panels`` panels at once: the chunk's activations, and
    the MAGA memory it reads plus what it records (arguments as in :func:`plan_chunk`)."""
    return size * per_panel + min(retained + size, panels) * bank_panel


def plan_chunk(panels: int, per_panel: int, bank_panel: int, retained: int, available: int | None,
               limit: int = 0) -> ChunkPlan:
    """The chunk size for ``panels`` panels to denoise.

    ``per_panel``: :func:`activation_bytes`; ``bank_panel``: one panel's MAGA memory; ``retained``: the
    panels the memory policy keeps; ``available``: the free memory (None: unknown); ``limit``: the
    story's ``chunk_size`` (0: none).
    """
    if panels <= 1:
        return ChunkPlan(1, "one panel to denoise")
    if available is None:
        return ChunkPlan(1, "sequential: the free memory is unknown")
    usable = int(available * HEADROOM)

    def need(k: int) -> int:
        return chunk_bytes(k, panels, per_panel, bank_panel, retained)

    top = min(MAX_CHUNK, limit or MAX_CHUNK, panels)
    mib = 2**20
    for k in range(top, 1, -1):
        if need(k) <= usable:
            why = f"chunks of {k}: about {need(k) / mib:.0f} MiB of the {available / mib:.0f} MiB free"
            if k == top and top < panels:
                why += f" (at most {top} panels per chunk{' by chunk_size' if limit and limit < MAX_CHUNK else ''})"
            return ChunkPlan(k, why)
    return ChunkPlan(1, f"sequential: a chunk of 2 panels needs about {need(2) / mib:.0f} MiB, more than half "
                        f"of the {available / mib:.0f} MiB free")
