"""SDXL's published architecture, built in code with random weights (no download).

Config values are those of ``stabilityai/stable-diffusion-xl-base-1.0`` (unet, vae, text_encoder,
text_encoder_2 config.json) and of ``diffusers/controlnet-canny-sdxl-1.0``, restated as in
:mod:`.architectures`. In fp32 it takes about 19 GB, so :func:`sdxl_components` builds it in the
run's dtype from the start (``sketchstory bench --arch sdxl`` uses bfloat16 on CPU).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from sketchstory.bench.architectures import _block_initialisers, sd15_text_encoder
from sketchstory.models import Components, ModelSpec, place, tiny_scheduler_config
from sketchstory.tokenizer import clip_tokenizer

SPEC = ModelSpec("sdxl-random", "in code", "in code", "SDXL + Canny ControlNet architecture, random weights",
                 1024, "sdxl")
# The UNet's and the ControlNet's shared shape: no attention at full latent size, 2 then 10
# transformer layers per block, the pooled text + 6 size/crop numbers (6 x 256 + 1280 = 2816) as added conditioning.
_SHAPE = {
    "in_channels": 4, "layers_per_block": 2, "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20), "use_linear_projection": True,
    "cross_attention_dim": 2048, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816, "norm_num_groups": 32,
}


def sdxl_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(sample_size=128, out_channels=4,
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), **_SHAPE)


def sdxl_controlnet() -> ControlNetModel:
    return ControlNetModel(conditioning_embedding_out_channels=(16, 32, 96, 256), **_SHAPE)


def sdxl_vae() -> AutoencoderKL:
    # SD1.5's VAE architecture, retrained; its scaling factor differs and it overflows in fp16.
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                         block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, sample_size=1024, scaling_factor=0.13025,
                         force_upcast=True)


def sdxl_text_encoder_2() -> CLIPTextModelWithProjection:
    """OpenCLIP ViT-bigG/14's text tower."""
    return CLIPTextModelWithProjection(CLIPTextConfig(
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
        max_position_embeddings=77, vocab_size=49408, hidden_act="gelu", projection_dim=1280))


def sdxl_text_encoder() -> CLIPTextModel:
    return sd15_text_encoder()  # CLIP ViT-L/14's text tower, as SD1.5's


def sdxl_components(device: torch.device, dtype: torch.dtype, seed: int = 0) -> Components:
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in fp32 and then cast, it would peak at 19 GB
    try:
        with _block_initialisers(seed):
            te, te2, unet, vae, cn = (sdxl_text_encoder(), sdxl_text_encoder_2(), sdxl_unet(), sdxl_vae(),
                                      sdxl_controlnet())
    finally:
        torch.set_default_dtype(default)
    place((te, te2, unet, vae, cn), device, dtype)
    return Components(clip_tokenizer(), te, unet, vae, cn, tiny_scheduler_config(), device, dtype, SPEC,
                      clip_tokenizer(), te2)
