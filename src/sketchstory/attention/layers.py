"""Which UNet self-attention layers MAGA touches, counted in execution order.

diffusers registers a UNet's modules as down, up, mid, which is not the order they run in; the
thesis's "layer i" counts spatial-transformer self-attention layers as they run: SD1.5 has 16
(down 0-5, mid 6, up 7-15). Other UNets (the demo and test models) have fewer, so ``start_layer``
is read as a position in SD1.5's 16 and mapped proportionally: layer l of L is a MAGA layer iff
l >= ceil(start_layer * L / 16). The thesis's 8 thus means "the second half of the network".
"""

from __future__ import annotations

import math
import re

SD15_LAYERS = 16
_BLOCK_RANK = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}


def _order_key(name: str) -> tuple:
    block = name.split(".")[0]
    return (_BLOCK_RANK[block], *(int(x) for x in re.findall(r"\.(\d+)(?=\.|$)", name)))


def self_attention_layers(processor_names: list[str]) -> list[str]:
    """Names of the spatial transformers' ``attn1`` processors, in execution order."""
    names = [n for n in processor_names if n.endswith("attn1.processor") and n.split(".")[0] in _BLOCK_RANK]
    return sorted(names, key=_order_key)


def first_maga_layer(start_layer: int, num_layers: int) -> int:
    """Index (in this UNet's execution order) of the first MAGA layer for an SD1.5 ``start_layer``."""
    return math.ceil(start_layer * num_layers / SD15_LAYERS)
