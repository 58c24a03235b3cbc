"""A character's reference picture as its anchor memory (docs/maga.md, "Characters").

The picture, cropped to the story's aspect and size, is encoded with the VAE and, at every MAGA
step, noised to that step's level with a fixed seed and run through the UNet: its description as
the prompt, its Canny edges through the ControlNet. The keys and values its MAGA layers compute
are the memory of a panel of its own (a negative index), first on the character's track, so the
policy's ``anchors:0`` reads the reference. Each step starts from the picture itself, not from the
previous step: the memory is what the character looks like, at each step's noise level.

A recording is cached as safetensors under ``memory/`` of the output folder, named and checked by a
fingerprint of everything it depends on: the picture's hash, model, size, steps, scheduler,
prompts and MAGA's layers and steps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from sketchstory.attention.maga import MAGARun, MAGAState
from sketchstory.models import Components
from sketchstory.pipeline.stage2 import (
    PanelJob,
    Sampling,
    added_conditions,
    control_tensor,
    encode_negative,
    encode_text,
    initial_noise,
)
from sketchstory.provenance import fingerprint
from sketchstory.sketches import canny_condition

REFERENCE_SEED = 0  # the noise a reference is noised with: fixed, so a recording is reproducible


@dataclass(frozen=True)
class Reference:
    character: str
    prompt: str  # the character's description (its name without one)
    picture_hash: str
    picture: Image.Image


def reference_panel(character: int) -> int:
    """The memory panel of the story's ``character``-th character's reference picture."""
    return -1 - character


def reference_path(out: Path, print_: str) -> Path:
    return Path(out) / "memory" / f"reference_{print_}.safetensors"


def reference_fingerprint(reference: Reference, negative: str, model: str, sampling: Sampling,
                          canny: tuple[int, int], maga: dict) -> str:
    return fingerprint({"reference": reference.picture_hash, "prompt": reference.prompt, "negative": negative,
                        "model": model,
                        "sampling": [sampling.width, sampling.height, sampling.steps, sampling.guidance_scale,
                                     sampling.controlnet_scale, sampling.scheduler],
                        "canny": list(canny), "maga": maga})


@torch.no_grad()
def record_reference(components: Components, run: MAGARun, panel: int, reference: Reference, negative: str,
                     sampling: Sampling, canny: tuple[int, int], scheduler: object) -> None:
    """Record the reference's keys and values as memory panel ``panel`` of ``run`` at its MAGA layers and steps."""
    c = components
    image = ImageOps.fit(reference.picture.convert("RGB"), (sampling.width, sampling.height), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    latents = c.vae.encode(pixels.to(c.device, c.vae.dtype)).latent_dist.mean * c.vae.config.scaling_factor
    latents = latents.to(c.dtype)
    noise = initial_noise(REFERENCE_SEED, tuple(latents.shape), c)
    cond, pooled = encode_text(c, reference.prompt)
    uncond, uncond_pooled = encode_negative(c, negative)
    control = control_tensor(canny_condition(image, *canny), c) if c.controlnet is not None else None
    job = PanelJob(panel, REFERENCE_SEED, cond, uncond, control, pooled[None], uncond_pooled[None])
    run.conditions[panel] = pooled
    cfg = sampling.guidance_scale > 1.0
    branches = 2 if cfg else 1
    emb = torch.cat([uncond, cond] if cfg else [cond])
    added = added_conditions([job], sampling, cfg, c)
    for i, t in enumerate(scheduler.timesteps):  # type: ignore[attr-defined]
        if i < run.config.start_step:
            continue
        sched = copy.deepcopy(scheduler)  # fresh at every step: some schedulers count the steps they scale
        run.state = MAGAState(step=i, panels=(panel,), branches=branches, latent_hw=tuple(latents.shape[-2:]),
                              write=frozenset({panel}))
        noisy = sched.add_noise(latents, noise, t[None])  # type: ignore[attr-defined]
        x = sched.scale_model_input(torch.cat([noisy] * branches), t)  # type: ignore[attr-defined]
        down = mid = None
        if control is not None:
            down, mid = c.controlnet(x, t, encoder_hidden_states=emb, controlnet_cond=torch.cat([control] * branches),
                                     conditioning_scale=sampling.controlnet_scale, added_cond_kwargs=added,
                                     return_dict=False)
        c.unet(x, t, encoder_hidden_states=emb, down_block_additional_residuals=down,
               mid_block_additional_residual=mid, added_cond_kwargs=added)
