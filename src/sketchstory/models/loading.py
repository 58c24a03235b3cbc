"""Loading stage 2's components: a base model (hub id, diffusers folder or single checkpoint), SD1.5 or
SDXL, and its Canny ControlNet, onto one device."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from sketchstory.models.components import Components
from sketchstory.models.device import default_device, place, prefers_bf16
from sketchstory.models.hub import CONTROLNET_FILES, explain_load_error, fetch, hub_offline
from sketchstory.models.specs import CANNY, Kind, ModelSpec


def base_kind(source: str) -> Kind:
    """SD1.5 or SDXL: a diffusers folder by its second text encoder, a checkpoint by its tensors."""
    path = Path(source)
    if path.is_dir():
        return "sdxl" if (path / "text_encoder_2").is_dir() else "sd15"
    from sketchstory.models.pipelines import detect_kind  # imports diffusers' pipelines: only for files

    return detect_kind(path)


def _load_base(source: str, dtype: torch.dtype, kind: Kind) -> tuple:
    """(tokenizer, text encoder, UNet, VAE, scheduler config, second tokenizer, second text encoder)."""
    if Path(source).is_file():
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
        pipe = cls.from_single_file(source, torch_dtype=dtype, local_files_only=hub_offline())
        return (pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.vae, pipe.scheduler.config,
                getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None))
    tok = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")
    te = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", torch_dtype=dtype)
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae", torch_dtype=dtype)
    sched = DDIMScheduler.load_config(source, subfolder="scheduler")
    tok2 = te2 = None
    if kind == "sdxl":
        tok2 = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer_2")
        te2 = CLIPTextModelWithProjection.from_pretrained(source, subfolder="text_encoder_2", torch_dtype=dtype)
    return tok, te, unet, vae, sched, tok2, te2


def _load_controlnet(source: str, dtype: torch.dtype) -> ControlNetModel:
    if Path(source).is_file():
        return ControlNetModel.from_single_file(source, torch_dtype=dtype, local_files_only=hub_offline())
    return ControlNetModel.from_pretrained(source, torch_dtype=dtype)


def load(spec: ModelSpec, device: str | None = None, *, with_controlnet: bool = True,
         offload: bool = False, dtype_name: str | None = None) -> Components:
    """Load a spec's components onto the device, in eval mode; raise ``ModelLoadError`` on failure.

    ``offload`` (CUDA only): see :func:`sketchstory.models.device.place`. ``dtype_name``: auto (None),
    fp32, bf16 or fp16 (see :func:`sketchstory.models.device.default_device`).
    """
    dev, dtype = default_device(device, dtype_name)
    if spec.base == "tiny":
        from sketchstory.models.tiny import tiny_components

        return tiny_components(dev, dtype, with_controlnet=with_controlnet)
    if spec.base == "tiny-sdxl":
        from sketchstory.models.tiny_sdxl import tiny_sdxl_components

        return tiny_sdxl_components(dev, dtype, with_controlnet=with_controlnet)
    base = fetch(spec.base, "base model")
    try:
        kind = spec.kind or base_kind(base)
        tok, te, unet, vae, sched, tok2, te2 = _load_base(base, dtype, kind)
    except (OSError, ValueError) as err:
        raise explain_load_error(base, "base model", err) from None
    controlnet = None
    if with_controlnet:
        source = fetch(spec.controlnet or CANNY[kind], "ControlNet", CONTROLNET_FILES)
        try:
            controlnet = _load_controlnet(source, dtype)
        except (OSError, ValueError) as err:
            raise explain_load_error(source, "ControlNet", err) from None
    if prefers_bf16(dev, dtype_name, unet):
        dtype = torch.bfloat16
    place((te, te2, controlnet, unet, vae), dev, dtype, offload=offload)
    return Components(tok, te, unet, vae, controlnet, dict(sched), dev, dtype, spec, tok2, te2)
