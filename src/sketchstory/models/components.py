"""What stage 2 runs: a base model's parts and its ControlNet, placed on one device.

SDXL adds a second tokenizer and text encoder (:attr:`Components.is_xl`): its prompt embedding is
both encoders' penultimate hidden states side by side, and its UNet and ControlNet also read the
second encoder's pooled embedding and the image's size and crop (stage2.added_conditions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from sketchstory.models.specs import ModelSpec

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddim": DDIMScheduler,
    "dpmpp-2m": DPMSolverMultistepScheduler,
    "euler": EulerDiscreteScheduler,
    "unipc": UniPCMultistepScheduler,
}


@dataclass
class Components:
    """What stage 2 needs, loaded and placed on one device."""

    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    controlnet: ControlNetModel | None
    scheduler_config: dict
    device: torch.device
    dtype: torch.dtype
    spec: ModelSpec
    tokenizer_2: CLIPTokenizer | None = None  # SDXL's second tokenizer and text encoder
    text_encoder_2: CLIPTextModelWithProjection | None = None

    @property
    def is_xl(self) -> bool:
        return self.text_encoder_2 is not None

    def scheduler(self, name: str) -> SchedulerMixin:
        """A fresh scheduler (they are stateful) of the named kind, on the model's noise schedule."""
        return SCHEDULERS[name].from_config(self.scheduler_config)

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)
