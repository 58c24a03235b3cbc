"""SD1.5's published architecture, built in code with random weights (no download).

Config values are those of ``stable-diffusion-v1-5`` (unet/vae/text_encoder config.json) and of
``lllyasviel/control_v11p_sd15_canny``; most are the diffusers class defaults, restated here so
the benchmark does not silently change when a default does.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from sketchstory.models import Components, ModelSpec
from sketchstory.tiny import tiny_scheduler_config
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


def sd15_components(device: torch.device, dtype: torch.dtype, seed: int = 0) -> Components:
    torch.manual_seed(seed)
    modules = [sd15_text_encoder(), sd15_unet(), sd15_vae(), sd15_controlnet()]
    for m in modules:
        m.to(device).eval().requires_grad_(False)
        if dtype != torch.float32:
            m.to(dtype)
    te, unet, vae, cn = modules
    return Components(clip_tokenizer(), te, unet, vae, cn, tiny_scheduler_config(), device, dtype, SPEC)
