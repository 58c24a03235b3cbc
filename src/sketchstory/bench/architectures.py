"""SD1.5's published architecture, built in code with random weights (no download).

Config values are those of ``stable-diffusion-v1-5`` (unet/vae/text_encoder config.json) and of
``lllyasviel/control_v11p_sd15_canny``; most are the diffusers class defaults, restated here so
the benchmark does not silently change when a default does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.nn import init
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from sketchstory.models import Components, ModelSpec, place, tiny_scheduler_config
from sketchstory.tokenizer import clip_tokenizer

_BLOCKS = (320, 640, 1280, 1280)
_DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
SPEC = ModelSpec("sd15-random", "in code", "in code", "SD1.5 + Canny ControlNet architecture, random weights")


def sd15_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=_BLOCKS, down_block_types=_DOWN, up_block_types=_UP,
                                cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)


def sd15_controlnet() -> ControlNetModel:
    return ControlNetModel(in_channels=4, layers_per_block=2, block_out_channels=_BLOCKS, down_block_types=_DOWN,
                           cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
                           conditioning_embedding_out_channels=(16, 32, 96, 256))


def sd15_vae() -> AutoencoderKL:
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                         block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512, scaling_factor=0.18215)


def sd15_text_encoder() -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, vocab_size=49408,
                                        hidden_act="quick_gelu", projection_dim=768))


class _BlockFill:
    """Random initialisers that cut their numbers from one shared random block.

    Timing needs weights of the right shapes and scales, not independent draws: torch's
    initialisers draw the 1.2 B numbers one at a time (about 30 s on 2 cores, 80 s under load),
    copying from a 1M-number block takes about a second. Scales follow torch's defaults.
    """

    def __init__(self, seed: int, size: int = 1 << 20) -> None:
        gen = torch.Generator().manual_seed(seed)
        block = (torch.rand(size, generator=gen) * 2 - 1) * math.sqrt(3.0)  # mean 0, variance 1
        self.block = torch.cat([block, block])  # any run of <= size numbers is one contiguous slice
        self.size, self.offset = size, 0

    def fill(self, tensor: torch.Tensor, mean: float, std: float) -> torch.Tensor:
        flat = tensor.detach().view(-1)
        with torch.no_grad():
            for start in range(0, flat.numel(), self.size):
                part = flat[start:start + self.size]
                torch.mul(self.block[self.offset:self.offset + part.numel()], std, out=part)
                if mean:
                    part.add_(mean)
                self.offset = (self.offset + 7919) % self.size  # a prime stride: neighbours differ
        return tensor

    def uniform_(self, tensor: torch.Tensor, a: float = 0.0, b: float = 1.0, **_: object) -> torch.Tensor:
        return self.fill(tensor, (a + b) / 2, (b - a) / math.sqrt(12.0))

    def normal_(self, tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, **_: object) -> torch.Tensor:
        return self.fill(tensor, mean, std)

    def kaiming_uniform_(self, tensor: torch.Tensor, a: float = 0.0, mode: str = "fan_in",
                         nonlinearity: str = "leaky_relu", **_: object) -> torch.Tensor:
        gain = init.calculate_gain(nonlinearity, a)
        return self.fill(tensor, 0.0, gain / math.sqrt(init._calculate_correct_fan(tensor, mode)))

    def xavier_uniform_(self, tensor: torch.Tensor, gain: float = 1.0, **_: object) -> torch.Tensor:
        fan_in, fan_out = init._calculate_fan_in_and_fan_out(tensor)
        return self.fill(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


@contextmanager
def _block_initialisers(seed: int) -> Iterator[None]:
    fill = _BlockFill(seed)
    names = ("uniform_", "normal_", "kaiming_uniform_", "xavier_uniform_")
    saved = {name: getattr(init, name) for name in names}
    try:
        for name in names:
            setattr(init, name, getattr(fill, name))
        yield
    finally:
        for name, original in saved.items():
            setattr(init, name, original)


def sd15_components(device: torch.device, dtype: torch.dtype, seed: int = 0) -> Components:
    torch.manual_seed(seed)
    with _block_initialisers(seed):
        modules = [sd15_text_encoder(), sd15_unet(), sd15_vae(), sd15_controlnet()]
    place(modules, device, dtype)
    te, unet, vae, cn = modules
    return Components(clip_tokenizer(), te, unet, vae, cn, tiny_scheduler_config(), device, dtype, SPEC)
