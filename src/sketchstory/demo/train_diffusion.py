"""Phase 2: text encoder, UNet and ControlNet trained jointly on VAE latents of the toy world.

One batch mixes three tasks, so a single UNet serves both stages and the ControlNet learns beside it:
- stage 1: caption "a line sketch of ..." -> the sketch's latent (no ControlNet);
- stage 2 with control: caption + Canny edges of the sketch -> the image's latent;
- stage 2 without control (condition dropout): caption -> the image's latent, which keeps the
  UNet a text-to-image model of its own rather than one that leans on the ControlNet.
Captions are dropped to "" now and then for classifier-free guidance. EMA weights are exported.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDPMScheduler,
    UNet2DConditionModel,
)
from tqdm import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from sketchstory.demo import checkpoint
from sketchstory.demo.architecture import (
    Preset,
    build_controlnet,
    build_text_encoder,
    build_unet,
    training_scheduler,
)
from sketchstory.demo.data import WorldData, control_image, to_tensor
from sketchstory.demo.train_config import TrainConfig, learning_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tensors:
    """Everything a step draws from, precomputed once: scaled latents, token ids, control images."""

    image_latents: torch.Tensor  # N x 4 x h x w
    sketch_latents: torch.Tensor
    image_ids: torch.Tensor  # N x 77
    sketch_ids: torch.Tensor
    empty_ids: torch.Tensor  # 77
    edges: np.ndarray  # N x H x W uint8 (Canny of the sketch)


@dataclass(frozen=True)
class Models:
    text_encoder: CLIPTextModel
    unet: UNet2DConditionModel
    controlnet: ControlNetModel

    def named(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.text_encoder, "unet": self.unet, "controlnet": self.controlnet}

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for m in self.named().values() for p in m.parameters()]


def _ids(tokenizer: CLIPTokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


@torch.no_grad()
def prepare(vae: AutoencoderKL, tokenizer: CLIPTokenizer, data: WorldData, cache: Path) -> Tensors:
    """Encode the set with the trained VAE (posterior means x scaling factor), cached beside the run."""
    key = float(vae.config.scaling_factor)
    state = checkpoint.load(cache)
    if state is None or state["key"] != key:
        scale = vae.config.scaling_factor
        latents = {}
        for name, arr in (("image", data.images), ("sketch", data.sketches)):
            chunks = [vae.encode(to_tensor(arr[i:i + 256])).latent_dist.mean * scale
                      for i in tqdm(range(0, len(arr), 256), desc=f"encoding {name}s", leave=False)]
            latents[name] = torch.cat(chunks).half()
        state = {"key": key, "image": latents["image"], "sketch": latents["sketch"]}
        checkpoint.save(cache, state)
    edges = np.stack([control_image(s)[..., 0] for s in data.sketches])
    return Tensors(state["image"], state["sketch"], _ids(tokenizer, data.captions),
                   _ids(tokenizer, data.sketch_captions()), _ids(tokenizer, [""])[0], edges)


class EMA:
    """Exponential moving average of parameters, with the usual warm-up of the decay."""

    def __init__(self, modules: dict[str, torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.shadow = {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in modules.items()}

    @torch.no_grad()
    def update(self, modules: dict[str, torch.nn.Module], step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for name, m in modules.items():
            for k, v in m.state_dict().items():
                s = self.shadow[name][k]
                if v.dtype.is_floating_point:
                    s.lerp_(v, 1.0 - d)
                else:
                    s.copy_(v)


def _loss(models: Models, t: Tensors, cfg: TrainConfig, gen: torch.Generator, noise_schedule: DDPMScheduler) -> torch.Tensor:
    n = cfg.batch
    idx = torch.randint(len(t.image_ids), (n,), generator=gen)
    u = torch.rand(3, n, generator=gen)
    is_sketch = u[0] < cfg.sketch_share
    controlled = (~is_sketch) & (u[1] < cfg.control_share)
    latents = torch.where(is_sketch[:, None, None, None], t.sketch_latents[idx], t.image_latents[idx]).float()
    ids = torch.where(is_sketch[:, None], t.sketch_ids[idx], t.image_ids[idx])
    ids = torch.where((u[2] < cfg.caption_dropout)[:, None], t.empty_ids[None], ids)
    noise = torch.randn(latents.shape, generator=gen)
    steps = torch.randint(noise_schedule.config.num_train_timesteps, (n,), generator=gen)
    noisy = noise_schedule.add_noise(latents, noise, steps)
    text = models.text_encoder(ids).last_hidden_state
    down, mid = None, None
    sel = controlled.nonzero().squeeze(1)
    if len(sel) > 0:
        cond = to_tensor(np.repeat(t.edges[idx[sel].numpy()][..., None], 3, axis=3)).add(1.0).div(2.0)  # [0, 1] like diffusers
        d_sel, m_sel = models.controlnet(noisy[sel], steps[sel], text[sel], controlnet_cond=cond, return_dict=False)
        down = [torch.zeros(n, *r.shape[1:]).index_copy(0, sel, r) for r in d_sel]
        mid = torch.zeros(n, *m_sel.shape[1:]).index_copy(0, sel, m_sel)
    pred = models.unet(noisy, steps, text, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid).sample
    per_sample = (pred - noise).pow(2).mean(dim=(1, 2, 3))
    if cfg.snr_gamma > 0:
        alpha_bar = noise_schedule.alphas_cumprod[steps]
        snr = alpha_bar / (1.0 - alpha_bar)
        per_sample = per_sample * snr.clamp(max=cfg.snr_gamma) / snr
    return per_sample.mean()


def train_diffusion(cfg: TrainConfig, p: Preset, t: Tensors, path: Path) -> tuple[Models, dict]:
    """Train, resume, extend or just load; returns the EMA models and the run's summary.

    A finished run asked for more ``steps`` than it took continues from its last step (a warm
    restart of the learning-rate schedule, which is computed for the new total); ``history`` in the
    summary lists every segment, so the provenance of the weights stays exact.
    """
    torch.manual_seed(cfg.seed)  # model initialisation
    text_encoder = build_text_encoder(p)
    unet = build_unet(p)
    models = Models(text_encoder, unet, build_controlnet(unet, p))
    opt = torch.optim.AdamW(models.parameters(), lr=cfg.lr, weight_decay=1e-2)
    ema = EMA(models.named(), cfg.ema_decay)
    state = checkpoint.load(path)
    step, elapsed, recent, history = 0, 0.0, [], []
    if state is not None:
        for name, m in models.named().items():
            m.load_state_dict(state["models"][name])
        opt.load_state_dict(state["optimizer"])
        ema.shadow = state["ema"]
        step, elapsed, recent = state["step"], state["elapsed"], state["recent"]
        history = state.get("history", [])
        if step < cfg.steps:
            log.info("diffusion: %s at step %d of %d", "extending" if state.get("summary") else "resuming",
                     step, cfg.steps)
    finished = state is not None and bool(state.get("summary")) and step >= cfg.steps
    if not finished and (not history or "to" in history[-1]):  # else: resuming an interrupted segment
        history.append({"steps_setting": cfg.steps, "lr": cfg.lr, "from": step})

    def snapshot(summary: dict | None = None) -> None:
        checkpoint.save(path, {"models": {k: m.state_dict() for k, m in models.named().items()}, "ema": ema.shadow,
                               "optimizer": opt.state_dict(), "step": step, "elapsed": elapsed,
                               "recent": recent, "history": history, "summary": summary})

    if not finished:
        schedule = training_scheduler()
        cadence = checkpoint.Cadence(cfg.checkpoint_minutes)
        for m in models.named().values():
            m.train()
        bar = tqdm(total=cfg.steps, initial=step, desc="diffusion", unit="step")
        while step < cfg.steps:
            t0 = time.monotonic()
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg.lr, step, cfg.steps, cfg.warmup)
            loss = _loss(models, t, cfg, checkpoint.step_generator(cfg.seed, "diffusion", step), schedule)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(models.parameters(), 1.0)
            opt.step()
            ema.update(models.named(), step)
            step += 1
            elapsed += time.monotonic() - t0
            recent = (recent + [loss.item()])[-cfg.log_every:]
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % cfg.log_every == 0:
                log.info("diffusion step %d/%d loss %.4f (%.2f s/step)", step, cfg.steps,
                         sum(recent) / len(recent), elapsed / step)
            if cadence.due():
                snapshot()
        bar.close()
        history[-1]["to"] = step
        summary = {"steps": step, "seconds": round(elapsed, 1), "final_loss": sum(recent) / max(1, len(recent)),
                   "history": history}
        log.info("diffusion done: %s", summary)
        snapshot(summary)
        state = {"summary": summary}
    for name, m in models.named().items():
        m.load_state_dict(ema.shadow[name])
        m.eval()
    return models, state["summary"]
