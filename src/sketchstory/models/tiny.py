"""Tiny random models of the real classes, so the whole pipeline runs in seconds without weights.

Same classes as SD1.5 (UNet2DConditionModel, ControlNetModel, AutoencoderKL, CLIPTextModel with
OpenAI's CLIP tokenizer), shrunk; seeded, so every build is identical. The UNet has 6 self-attention
layers (down 2, mid 1, up 3), enough for MAGA's layer mapping to leave some plain and some shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from sketchstory.models.components import Components
from sketchstory.models.device import place
from sketchstory.models.specs import REGISTRY
from sketchstory.tokenizer import clip_tokenizer

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

HIDDEN = 32
BLOCKS = (32, 64)


def tiny_unet() -> UNet2DConditionModel:
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=BLOCKS,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=HIDDEN, attention_head_dim=8, norm_num_groups=32,
    )
    return sharpen_self_attention(unet)


def sharpen_self_attention(unet: torch.nn.Module) -> torch.nn.Module:
    """Default init gives near-uniform self-attention, where sharing keys barely matters; sharper
    logits (as trained models have) make MAGA's effect, and any bug in it, visible in tests."""
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn1"):
                module.to_q.weight.mul_(4.0)
                module.to_k.weight.mul_(4.0)
    return unet


def tiny_controlnet() -> ControlNetModel:
    # One stride-2 step in the condition embedding, matching the tiny VAE's 2x downsampling.
    return ControlNetModel(
        in_channels=4, layers_per_block=2, block_out_channels=BLOCKS,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        cross_attention_dim=HIDDEN, attention_head_dim=8, norm_num_groups=32,
        conditioning_embedding_out_channels=(16, 32),
    )


def tiny_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=BLOCKS,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=32,
    )


def tiny_text_encoder() -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(
        hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    ))


def tiny_scheduler_config() -> dict:
    return dict(DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1).config)


def tiny_components(device: torch.device, dtype: torch.dtype, *, with_controlnet: bool = True,
                    seed: int = 0) -> Components:
    torch.manual_seed(seed)
    te, unet, vae, cn = tiny_text_encoder(), tiny_unet(), tiny_vae(), tiny_controlnet() if with_controlnet else None
    place((te, unet, vae, cn), device, dtype)
    return Components(clip_tokenizer(), te, unet, vae, cn, tiny_scheduler_config(), device, dtype, REGISTRY["tiny"])


def tiny_pipeline(device: torch.device, dtype: torch.dtype) -> StableDiffusionPipeline:
    """Stage 1's tiny model: the tiny parts as a text-to-image pipeline."""
    from diffusers import StableDiffusionPipeline  # slow to import; only stage 1 needs it

    c = tiny_components(device, dtype, with_controlnet=False)
    return StableDiffusionPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=DDIMScheduler.from_config(c.scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
