"""Stage 2: prompts + Canny conditions -> panel latents/images, with SD1.5 or SDXL, ControlNet and MAGA.

Our own loop over diffusers components (the same steps as ``StableDiffusionControlNetPipeline``, and
as ``StableDiffusionXLControlNetPipeline`` for SDXL)
because MAGA needs to know, before every UNet call, which story panels are in the batch and at
which step. Each panel's initial noise comes from its own seeded CPU generator, so a panel's
pixels do not depend on which other panels share its batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image

from sketchstory.attention.maga import MAGARun, MAGAState
from sketchstory.models import Components

@dataclass(frozen=True)
class Sampling:
    """The sampler settings of one run (resolved from the story's settings)."""

    width: int
    height: int
    steps: int
    guidance_scale: float
    controlnet_scale: float
    scheduler: str


@dataclass(frozen=True)
class PanelJob:
    index: int  # position in the story
    seed: int
    cond: torch.Tensor  # (1, 77, D) prompt embedding
    uncond: torch.Tensor  # (1, 77, D) negative-prompt embedding
    control: torch.Tensor | None  # (1, 3, H, W) Canny condition in [0, 1], or None: no ControlNet
    pooled: torch.Tensor | None = None  # SDXL: (1, D2) pooled prompt embedding of the second encoder
    uncond_pooled: torch.Tensor | None = None  # SDXL: the same of the negative prompt


def _ids(tok: object, text: str) -> torch.Tensor:
    return tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,  # type: ignore[operator]
               return_tensors="pt").input_ids


@torch.no_grad()
def encode_text(components: Components, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states (1, 77, D), pooled embedding (D,)) of a prompt; long prompts are truncated, as in
    diffusers (the runner warns about them: see tokenizer.long_prompts).

    SDXL, as its pipeline: both encoders' penultimate hidden states side by side, and the second
    encoder's projected pooled embedding.
    """
    c = components
    if not c.is_xl:
        out = c.text_encoder(_ids(c.tokenizer, text).to(c.device))
        return out.last_hidden_state, out.pooler_output[0]
    hidden = []
    for tok, enc in ((c.tokenizer, c.text_encoder), (c.tokenizer_2, c.text_encoder_2)):
        out = enc(_ids(tok, text).to(c.device), output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1), out[0][0]


@torch.no_grad()
def encode_negative(components: Components, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The negative prompt's embeddings; SDXL's pipeline uses zeros for an empty one (its default), so do we."""
    cond, pooled = encode_text(components, text)
    if components.is_xl and not text:
        return torch.zeros_like(cond), torch.zeros_like(pooled)
    return cond, pooled


def added_conditions(jobs: list[PanelJob], sampling: Sampling, cfg: bool,
                     components: Components) -> dict[str, torch.Tensor] | None:
    """SDXL's extra UNet/ControlNet inputs: pooled text embeddings and (original size, crop, target size).

    Panels are drawn whole at the story's size: original = target = (height, width), crop (0, 0).
    """
    if not components.is_xl:
        return None
    pooled = torch.cat(([j.uncond_pooled for j in jobs] if cfg else []) + [j.pooled for j in jobs])
    size = [sampling.height, sampling.width, 0, 0, sampling.height, sampling.width]
    time_ids = torch.tensor([size], device=components.device, dtype=pooled.dtype).repeat(pooled.shape[0], 1)
    return {"text_embeds": pooled, "time_ids": time_ids}


def control_tensor(image: Image.Image, components: Components) -> torch.Tensor:
    """A Canny condition image as the ControlNet input: (1, 3, H, W) in [0, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None].to(components.device, components.dtype)


def initial_noise(seed: int, shape: tuple[int, ...], components: Components) -> torch.Tensor:
    gen = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(components.device, components.dtype)


def prepared_scheduler(components: Components, sampling: Sampling) -> SchedulerMixin:
    """The run's scheduler with its timesteps set; :func:`denoise` steps a copy (schedulers keep state)."""
    sched = components.scheduler(sampling.scheduler)
    sched.set_timesteps(sampling.steps, device=components.device)
    return sched


@torch.no_grad()
def denoise(
    components: Components,
    jobs: list[PanelJob],
    sampling: Sampling,
    run: MAGARun | None = None,
    *,
    write: frozenset[int] = frozenset(),
    on_step: Callable[[int], None] | None = None,
    scheduler: SchedulerMixin | None = None,
) -> torch.Tensor:
    """Denoise a batch of panels together; returns their final latents (P, 4, h, w).

    ``write`` names the panels whose MAGA keys/values the run's memory must keep; ``scheduler`` is a
    :func:`prepared_scheduler` of these settings (default: one made here).
    """
    scale = components.vae_scale
    h, w = sampling.height // scale, sampling.width // scale
    sched = copy.deepcopy(scheduler) if scheduler is not None else prepared_scheduler(components, sampling)
    channels = components.unet.config.in_channels
    latents = torch.cat([initial_noise(j.seed, (1, channels, h, w), components) for j in jobs])
    latents = latents * sched.init_noise_sigma

    cfg = sampling.guidance_scale > 1.0
    emb = torch.cat(([j.uncond for j in jobs] if cfg else []) + [j.cond for j in jobs])
    branches = 2 if cfg else 1
    added = added_conditions(jobs, sampling, cfg, components)
    use_control = components.controlnet is not None and any(j.control is not None for j in jobs)
    if use_control:
        blank = torch.zeros(1, 3, sampling.height, sampling.width, device=components.device, dtype=components.dtype)
        control = torch.cat([j.control if j.control is not None else blank for j in jobs] * branches)
        # Panels without a sketch get a zero-weight condition: their residuals vanish.
        weights = torch.tensor([sampling.controlnet_scale if j.control is not None else 0.0 for j in jobs] * branches,
                               device=components.device, dtype=components.dtype).view(-1, 1, 1, 1)

    for i, t in enumerate(sched.timesteps):
        if run is not None:
            run.state = MAGAState(step=i, panels=tuple(j.index for j in jobs), branches=branches,
                                  latent_hw=(h, w), write=write)
        x = sched.scale_model_input(torch.cat([latents] * branches), t)
        down = mid = None
        if use_control:
            down, mid = components.controlnet(x, t, encoder_hidden_states=emb, controlnet_cond=control,
                                              conditioning_scale=1.0, added_cond_kwargs=added, return_dict=False)
            down, mid = [d * weights for d in down], mid * weights
        noise = components.unet(x, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
                                mid_block_additional_residual=mid, added_cond_kwargs=added).sample
        if cfg:
            uncond, cond = noise.chunk(2)
            noise = uncond + sampling.guidance_scale * (cond - uncond)
        latents = sched.step(noise, t, latents).prev_sample
        if on_step is not None:
            on_step(i)
    return latents


@torch.no_grad()
def decode(components: Components, latents: torch.Tensor) -> list[Image.Image]:
    """Latents -> RGB images, one panel at a time so results do not depend on the batch."""
    images = []
    vae = components.vae
    # SDXL's VAE overflows in fp16 (its config says force_upcast): decode in fp32, as its pipeline does.
    upcast = components.is_xl and vae.dtype == torch.float16 and vae.config.force_upcast
    if upcast:
        vae.to(torch.float32)
    for lat in latents.split(1):
        x = vae.decode(lat.to(vae.dtype) / vae.config.scaling_factor).sample
        arr = ((x[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        images.append(Image.fromarray(arr, "RGB"))
    if upcast:
        vae.to(torch.float16)
    return images
