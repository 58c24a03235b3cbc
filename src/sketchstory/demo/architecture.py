"""The demo model family: small instances of the real diffusers/transformers classes.

Two presets: ``demo`` (the shipped models, 64x64 images, 16x16x4 latents) and ``tiny`` (the same
layout at toy widths, for smoke tests). The UNet keeps SD1.5's structure in miniature: transformer
blocks with multi-head self-attention (``attn1``) and cross-attention to the text (``attn2``) at
the two finest levels and in the middle, ``only_cross_attention=False``, epsilon prediction under
SD1.5's noise schedule; the ControlNet is derived from it with a conditioning embedding that
downsamples 4x (the VAE's factor, where SD1.5's downsamples 8x).
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    DDPMScheduler,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel

CLIP_VOCAB = 49408
CLIP_BOS, CLIP_EOS = 49406, 49407
# SD1.5's training noise schedule; sampling schedulers are built from the same numbers.
NOISE_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}


@dataclass(frozen=True)
class Preset:
    """Widths of every model; images are ``image_size`` pixels, latents a quarter of that."""

    image_size: int
    vae_channels: tuple[int, int, int]
    vae_groups: int
    text_hidden: int
    text_layers: int
    text_heads: int
    unet_channels: tuple[int, int, int]
    unet_groups: int
    unet_heads: int
    control_embedding: tuple[int, int, int]


PRESETS: dict[str, Preset] = {
    "demo": Preset(64, (16, 32, 64), 8, 32, 3, 2, (32, 64, 96), 8, 2, (16, 32, 64)),
    "tiny": Preset(32, (8, 16, 16), 4, 16, 1, 2, (16, 32, 32), 8, 2, (8, 16, 16)),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {tuple(PRESETS)}")
    return PRESETS[name]


def build_vae(p: Preset) -> AutoencoderKL:
    """Three blocks -> two 2x downsamplings: 64x64x3 images <-> 16x16x4 latents."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=p.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=p.vae_groups,
        sample_size=p.image_size,
    )


def build_text_encoder(p: Preset) -> CLIPTextModel:
    """A small CLIP text transformer over the full CLIP vocabulary (so the real tokenizer works).

    The token embedding dominates its size (49,408 x hidden), which is why hidden is small.
    """
    config = CLIPTextConfig(
        vocab_size=CLIP_VOCAB,
        hidden_size=p.text_hidden,
        intermediate_size=4 * p.text_hidden,
        projection_dim=p.text_hidden,
        num_hidden_layers=p.text_layers,
        num_attention_heads=p.text_heads,
        max_position_embeddings=77,
        bos_token_id=CLIP_BOS,
        eos_token_id=CLIP_EOS,  # the pooled output is read at the first end-of-text token
        pad_token_id=CLIP_EOS,
    )
    return CLIPTextModel(config)


def build_unet(p: Preset) -> UNet2DConditionModel:
    """Attention at the 16x16 and 8x8 levels and in the 4x4 middle: 7 ``attn1`` layers.

    ``attention_head_dim`` is, as in SD1.5's config, the number of heads (diffusers' legacy name).
    """
    return UNet2DConditionModel(
        sample_size=p.image_size // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=p.unet_channels,
        layers_per_block=1,
        norm_num_groups=p.unet_groups,
        cross_attention_dim=p.text_hidden,
        attention_head_dim=p.unet_heads,
        only_cross_attention=False,
    )


def build_controlnet(unet: UNet2DConditionModel, p: Preset) -> ControlNetModel:
    """A ControlNet copying the UNet's encoder, fed RGB Canny edges at image resolution."""
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=p.control_embedding)


def training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**NOISE_SCHEDULE, clip_sample=False)


def sampling_scheduler() -> DDIMScheduler:
    """DDIM with SD1.5's settings over the training schedule."""
    return DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
