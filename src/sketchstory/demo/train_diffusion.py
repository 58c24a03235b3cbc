"""Phase 2: text encoder, UNet and ControlNet trained jointly on VAE latents of the toy world.

A batch is made of two-panel pages (``pages.py``) and mixes three tasks, so a single UNet serves
both stages and the ControlNet learns beside it:
- stage 1: caption "a line sketch of ..." -> the sketch's latent (no ControlNet);
- stage 2 with control: caption + Canny edges of the sketch -> the image's latent;
- stage 2 without control (condition dropout): caption -> the image's latent, which keeps the
  UNet a text-to-image model of its own rather than one that leans on the ControlNet.
A share of image pages is joint (the two panels share self-attention) and a share of their
captions leaves the body colour unsaid; the loss weighs the character's pixels more, since what a
page teaches (copying the character's look) lives there. Captions are dropped to "" now and then
for classifier-free guidance. EMA weights are exported.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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
from sketchstory.demo.pages import PageRun, install_page_attention, remove_page_attention
from sketchstory.demo.train_config import TrainConfig, learning_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tensors:
    """Everything a step draws from, precomputed once: scaled latents, token ids, control images."""

    image_latents: torch.Tensor  # N x 4 x h x w
    sketch_latents: torch.Tensor
    image_ids: torch.Tensor  # N x 77
    plain_ids: torch.Tensor  # N x 77, the captions without the body colour
    sketch_ids: torch.Tensor
    empty_ids: torch.Tensor  # 77
    edges: np.ndarray  # N x H x W uint8 (Canny of the sketch)
    character: torch.Tensor  # N x 1 x h x w: share of each latent cell covered by the character
    colour: torch.Tensor  # N x 3 x h x w (fp16): each latent cell's mean RGB in the clean image


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
    key = (float(vae.config.scaling_factor), hashlib.sha256(data.images.tobytes()).hexdigest())
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
    h, w = state["image"].shape[-2:]
    character = F.adaptive_avg_pool2d(torch.from_numpy(data.masks).float()[:, None], (h, w))
    colour = F.adaptive_avg_pool2d(torch.from_numpy(data.images).permute(0, 3, 1, 2).float(), (h, w)).half()
    return Tensors(state["image"], state["sketch"], _ids(tokenizer, data.captions), _ids(tokenizer, data.plain_captions),
                   _ids(tokenizer, data.sketch_captions()), _ids(tokenizer, [""])[0], edges, character, colour)


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


def _page_batch(t: Tensors, cfg: TrainConfig, gen: torch.Generator, step: int) -> dict[str, torch.Tensor]:
    """Draw ``cfg.batch // 2`` pages: indices, tasks, captions, timesteps (one per page, see curriculum)."""
    pages = cfg.batch // 2
    pg = torch.randint(len(t.image_ids) // 2, (pages,), generator=gen)
    idx = torch.stack([2 * pg, 2 * pg + 1], 1).reshape(-1)
    u_page, u = torch.rand(3, pages, generator=gen), torch.rand(5, 2 * pages, generator=gen)
    is_sketch = (u_page[0] < cfg.sketch_share).repeat_interleave(2)
    joint = (u_page[1] < cfg.page_share) & ~is_sketch[0::2]
    unsaid = u[0] < torch.where(joint.repeat_interleave(2), cfg.unsaid_share, cfg.unsaid_single)
    ids = torch.where(unsaid[:, None], t.plain_ids[idx], t.image_ids[idx])
    ids = torch.where(is_sketch[:, None], t.sketch_ids[idx], ids)
    ids = torch.where((u[1] < cfg.caption_dropout)[:, None], t.empty_ids[None], ids)
    steps = torch.randint(1000, (pages,), generator=gen).repeat_interleave(2)
    # Curriculum: early on, one panel of a joint page is less noisy, so the copy has a clear source.
    clean_share = max(0.0, 1.0 - step / cfg.curriculum) if cfg.curriculum else 0.0
    which = (u_page[2] < 0.5).long().repeat_interleave(2)  # the page's panel (0 or 1) that may be cleaner
    cleaner = joint.repeat_interleave(2) & (u[2] < clean_share) & (torch.arange(2 * pages) % 2 == which)
    steps = torch.where(cleaner, (steps.float() * u[3]).long(), steps)
    return {"idx": idx, "is_sketch": is_sketch, "controlled": (~is_sketch) & (u[4] < cfg.control_share),
            "joint": joint, "ids": ids, "steps": steps}


def _eps(models: Models, noisy: torch.Tensor, steps: torch.Tensor, text: torch.Tensor, edges: np.ndarray,
         controlled: torch.Tensor) -> torch.Tensor:
    """The UNet's noise prediction, with the ControlNet's residuals where ``controlled``."""
    n = len(noisy)
    down, mid = None, None
    sel = controlled.nonzero().squeeze(1)
    if len(sel) > 0:
        cond = to_tensor(np.repeat(edges[sel.numpy()][..., None], 3, axis=3)).add(1.0).div(2.0)  # [0, 1] like diffusers
        d_sel, m_sel = models.controlnet(noisy[sel], steps[sel], text[sel], controlnet_cond=cond, return_dict=False)
        down = [torch.zeros(n, *r.shape[1:]).index_copy(0, sel, r) for r in d_sel]
        mid = torch.zeros(n, *m_sel.shape[1:]).index_copy(0, sel, m_sel)
    return models.unet(noisy, steps, text, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid).sample


def _loss(models: Models, page: PageRun, t: Tensors, cfg: TrainConfig, gen: torch.Generator,
          noise_schedule: DDPMScheduler, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The denoising loss and the page match loss (pages.py; 0 unless ``cfg.match_weight``)."""
    b = _page_batch(t, cfg, gen, step)
    idx, steps = b["idx"], b["steps"]
    latents = torch.where(b["is_sketch"][:, None, None, None], t.sketch_latents[idx], t.image_latents[idx]).float()
    noise = torch.randn(latents.shape, generator=gen)
    noisy = noise_schedule.add_noise(latents, noise, steps)
    page.joint, page.character, page.colour = b["joint"], t.character[idx], t.colour[idx]
    pred = _eps(models, noisy, steps, models.text_encoder(b["ids"]).last_hidden_state, t.edges[idx], b["controlled"])
    match = torch.stack(page.match_losses).mean() if page.match_losses else torch.zeros(())
    page.match_losses.clear()
    weight = 1.0 + cfg.character_weight * t.character[idx] * (~b["is_sketch"]).float()[:, None, None, None]
    per_sample = ((pred - noise).pow(2) * weight).mean(dim=(1, 2, 3))
    if cfg.snr_gamma > 0:
        alpha_bar = noise_schedule.alphas_cumprod[steps]
        snr = alpha_bar / (1.0 - alpha_bar)
        per_sample = per_sample * snr.clamp(max=cfg.snr_gamma) / snr
    return per_sample.mean(), match


@torch.no_grad()
def page_probe(models: Models, page: PageRun, t: Tensors, noise_schedule: DDPMScheduler) -> dict[str, float]:
    """Does the second panel use the first? Character-weighted noise error of panel 1 (body colour
    unsaid, with control) on held-out pages, with its true partner, another page's, or none.
    ``swap - true`` > 0 means the memory's content is used, which is what MAGA needs."""
    pages = len(t.image_ids) // 2
    gen = torch.Generator().manual_seed(123)
    out: dict[str, float] = {}
    for level in (300, 600):
        errors = {}
        noise = torch.randn(pages, 2, *t.image_latents.shape[1:], generator=gen)
        for name, first, joint in (("true", torch.arange(pages), True), ("swap", torch.arange(pages).roll(1), True),
                                   ("none", torch.arange(pages), False)):
            idx = torch.stack([2 * first, 2 * torch.arange(pages) + 1], 1).reshape(-1)
            steps = torch.full((2 * pages,), level)
            noisy = noise_schedule.add_noise(t.image_latents[idx].float(), noise.flatten(0, 1), steps)
            page.joint = torch.full((pages,), joint)
            ids = t.plain_ids[idx]
            pred = _eps(models, noisy, steps, models.text_encoder(ids).last_hidden_state, t.edges[idx],
                        torch.ones(2 * pages, dtype=torch.bool))
            w = t.character[idx][1::2]
            errors[name] = float(((pred[1::2] - noise[:, 1]).pow(2) * w).sum() / (w.sum() * pred.shape[1]))
        out |= {f"t{level}_{k}": round(v, 5) for k, v in errors.items()}
        out[f"t{level}_swap_minus_true"] = round(errors["swap"] - errors["true"], 5)
    return out


def _init_from(models: Models, folder: Path) -> None:
    """Start from a trained model folder (diffusers layout), e.g. the shipped demo weights."""
    loaded = {"text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder"),
              "unet": UNet2DConditionModel.from_pretrained(folder, subfolder="unet"),
              "controlnet": ControlNetModel.from_pretrained(folder, subfolder="controlnet")}
    for name, m in models.named().items():
        m.load_state_dict({k: v.float() for k, v in loaded[name].state_dict().items()})


def _param_groups(models: Models, cfg: TrainConfig) -> list[dict]:
    """Self-attention's queries and keys learn faster: they start out nearly uniform (every token
    alike), and a page's copy pays only once they single out the partner's matching tokens."""
    qk = [p for n, p in models.unet.named_parameters() if ".attn1.to_q." in n or ".attn1.to_k." in n]
    chosen = {id(p) for p in qk}
    rest = [p for p in models.parameters() if id(p) not in chosen]
    return [{"params": rest, "mult": 1.0}, {"params": qk, "mult": cfg.attention_lr_mult}]


def _segment_settings(cfg: TrainConfig) -> dict:
    """What a history segment records, so that weights resumed under other settings say so."""
    return {k: v for k, v in cfg.as_json().items() if k not in ("run_dir", "out_dir", "checkpoint_minutes", "log_every")}


def train_diffusion(cfg: TrainConfig, p: Preset, t: Tensors, path: Path,
                    probe: Tensors | None = None) -> tuple[Models, dict]:
    """Train, resume, extend or just load; returns the EMA models and the run's summary.

    A finished run asked for more ``steps`` than it took continues from its last step (a warm
    restart of the learning-rate schedule, which is computed for the new total); ``history`` in the
    summary lists every segment, so the provenance of the weights stays exact.
    """
    torch.manual_seed(cfg.seed)  # model initialisation
    text_encoder = build_text_encoder(p)
    unet = build_unet(p)
    models = Models(text_encoder, unet, build_controlnet(unet, p))
    state = checkpoint.load(path)
    if state is None and cfg.init:
        _init_from(models, Path(cfg.init))
    opt = torch.optim.AdamW(_param_groups(models, cfg), lr=cfg.lr, weight_decay=1e-2)
    ema = EMA(models.named(), cfg.ema_decay)
    page = install_page_attention(unet)
    page.match_weight, page.match_target, page.match_partner = cfg.match_weight, cfg.match_target, cfg.match_partner
    matches: list[float] = []
    progress = checkpoint.Progress("diffusion", cfg.steps, cfg.log_every, log, state)
    history, probes = [], []
    if state is not None:
        for name, m in models.named().items():
            m.load_state_dict(state["models"][name])
        opt.load_state_dict(state["optimizer"])
        ema.shadow = state["ema"]
        history, probes = state.get("history", []), state.get("probes", [])
        if progress.step < cfg.steps:
            log.info("diffusion: %s at step %d of %d", "extending" if state.get("summary") else "resuming",
                     progress.step, cfg.steps)
    finished = state is not None and bool(state.get("summary")) and progress.step >= cfg.steps
    settings = _segment_settings(cfg)
    if not finished and history and "to" not in history[-1] and history[-1].get("settings") != settings:
        history[-1]["to"] = progress.step  # resumed with other settings: the old segment ends here
    if not finished and (not history or "to" in history[-1]):  # else: resuming an interrupted segment
        history.append({"steps_setting": cfg.steps, "lr": cfg.lr, "from": progress.step, "settings": settings})

    def snapshot(summary: dict | None = None) -> None:
        checkpoint.save(path, {"models": {k: m.state_dict() for k, m in models.named().items()}, "ema": ema.shadow,
                               "optimizer": opt.state_dict(), **progress.state(), "history": history,
                               "probes": probes, "summary": summary})

    if not finished:
        schedule = training_scheduler()
        cadence = checkpoint.Cadence(cfg.checkpoint_minutes)
        for m in models.named().values():
            m.train()
        for step in progress.steps():
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg.lr, step, cfg.steps, cfg.warmup) * group["mult"]
            loss, match = _loss(models, page, t, cfg, checkpoint.step_generator(cfg.seed, "diffusion", step),
                                schedule, step)
            opt.zero_grad(set_to_none=True)
            (loss + cfg.match_weight * match).backward()
            torch.nn.utils.clip_grad_norm_(models.parameters(), 1.0)
            opt.step()
            ema.update(models.named(), step)
            matches = (matches + [match.item()])[-cfg.log_every:]
            progress.record(loss.item(), f" match {sum(matches) / len(matches):.3f}" if cfg.match_weight else "")
            if probe is not None and cfg.probe_every and progress.step % cfg.probe_every == 0:
                probes.append({"step": progress.step} | page_probe(models, page, probe, schedule))
                log.info("page probe: %s", probes[-1])
                for m in models.named().values():
                    m.train()
            if cadence.due():
                snapshot()
        history[-1]["to"] = progress.step
        summary = {"steps": progress.step, "seconds": round(progress.elapsed, 1), "final_loss": progress.mean(),
                   "history": history, "probes": probes}
        log.info("diffusion done: %s", summary)
        snapshot(summary)
        state = {"summary": summary}
    remove_page_attention(unet)
    for name, m in models.named().items():
        m.load_state_dict(ema.shadow[name])
        m.eval()
    return models, state["summary"]
