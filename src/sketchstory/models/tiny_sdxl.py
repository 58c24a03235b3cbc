"""Tiny random models of SDXL's classes: its UNet (two text encoders' width, size/crop conditioning)
and Canny ControlNet, and the two pipelines a diffusers user runs them in.

The UNet keeps what makes SDXL different from SD1.5 for MAGA: no attention at the top level,
several transformer layers per block (here 2, SDXL: 2 and 10), the ``text_time`` added conditioning
(pooled text embedding + original size, crop, target size). 12 self-attention layers: down 4, mid 2, up 6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from diffusers import ControlNetModel, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from sketchstory.models.components import Components
from sketchstory.models.device import place
from sketchstory.models.specs import REGISTRY
from sketchstory.models.tiny import BLOCKS, sharpen_self_attention, tiny_scheduler_config, tiny_vae
from sketchstory.tokenizer import clip_tokenizer

if TYPE_CHECKING:
    from diffusers import StableDiffusionXLControlNetPipeline, StableDiffusionXLPipeline

HIDDEN = 32  # each text encoder's width; the UNet reads both, concatenated
TIME_DIM = 8  # SDXL: 256
_UNET_SHAPE = {
    "block_out_channels": BLOCKS, "layers_per_block": 2, "attention_head_dim": (2, 4),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"), "transformer_layers_per_block": (1, 2),
    "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": TIME_DIM,
    # the pooled embedding of the second encoder + 6 size/crop numbers, each embedded in TIME_DIM
    "projection_class_embeddings_input_dim": HIDDEN + 6 * TIME_DIM,
    "cross_attention_dim": 2 * HIDDEN, "norm_num_groups": 32, "in_channels": 4,
}


def tiny_sdxl_unet() -> UNet2DConditionModel:
    unet = UNet2DConditionModel(sample_size=16, out_channels=4, up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                **_UNET_SHAPE)
    return sharpen_self_attention(unet)


def tiny_sdxl_controlnet() -> ControlNetModel:
    return ControlNetModel(conditioning_embedding_out_channels=(16, 32), **_UNET_SHAPE)


def tiny_text_encoders() -> tuple[CLIPTextModel, CLIPTextModelWithProjection]:
    config = CLIPTextConfig(
        hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, vocab_size=49408,
        max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        projection_dim=HIDDEN, hidden_act="gelu",
    )
    return CLIPTextModel(config), CLIPTextModelWithProjection(config)


def tiny_sdxl_components(device: torch.device, dtype: torch.dtype, *, with_controlnet: bool = True,
                         seed: int = 0) -> Components:
    torch.manual_seed(seed)
    te, te2 = tiny_text_encoders()
    unet, vae, cn = tiny_sdxl_unet(), tiny_vae(), tiny_sdxl_controlnet() if with_controlnet else None
    place((te, te2, unet, vae, cn), device, dtype)
    return Components(clip_tokenizer(), te, unet, vae, cn, tiny_scheduler_config(), device, dtype,
                      REGISTRY["tiny-sdxl"], clip_tokenizer(), te2)


def _parts(device: torch.device, dtype: torch.dtype, seed: int, controlnet: bool) -> dict:
    """A pipeline's keyword arguments, from the same models as :func:`tiny_sdxl_components`."""
    c = tiny_sdxl_components(device, dtype, with_controlnet=controlnet, seed=seed)
    parts = {"vae": c.vae, "text_encoder": c.text_encoder, "text_encoder_2": c.text_encoder_2, "unet": c.unet,
             "tokenizer": c.tokenizer, "tokenizer_2": c.tokenizer_2,
             "scheduler": DDIMScheduler.from_config(c.scheduler_config)}
    return parts | ({"controlnet": c.controlnet} if controlnet else {})


def tiny_sdxl_pipeline(device: torch.device, dtype: torch.dtype, seed: int = 0) -> StableDiffusionXLPipeline:
    from diffusers import StableDiffusionXLPipeline  # slow to import; only its users need it

    pipe = StableDiffusionXLPipeline(**_parts(device, dtype, seed, controlnet=False), add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl_controlnet_pipeline(device: torch.device, dtype: torch.dtype,
                                  seed: int = 0) -> StableDiffusionXLControlNetPipeline:
    from diffusers import StableDiffusionXLControlNetPipeline

    pipe = StableDiffusionXLControlNetPipeline(**_parts(device, dtype, seed, controlnet=True), add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
