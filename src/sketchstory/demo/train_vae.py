"""Phase 1: the AutoencoderKL, trained on the world's coloured images and line sketches alike
(stage 1 denoises sketches in the same latent space), then its latent scale measured.

It trains on crops (the model is convolutional, so it then runs on whole images): a 32x32 crop
costs a quarter of a 64x64 image, and centring most crops on the character spends the steps on
the small, many-coloured parts that matter (hidden colours), not on flat sky and grass.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from sketchstory.demo import checkpoint
from sketchstory.demo.architecture import Preset, build_vae
from sketchstory.demo.data import WorldData, to_tensor
from sketchstory.demo.train_config import TrainConfig, learning_rate

log = logging.getLogger(__name__)
_SKETCH_SHARE = 1 / 3  # sketches are thin lines: give them more than their quarter of the diffusion data


_CHARACTER_CROPS = 0.75


def _batch(data: WorldData, n: int, gen: torch.Generator, crop: int = 0) -> torch.Tensor:
    """``n`` images and sketches in [-1, 1], whole or cropped to ``crop`` pixels."""
    idx = torch.randint(len(data), (n,), generator=gen).numpy()
    n_sketch = round(n * _SKETCH_SHARE)
    x = torch.cat([to_tensor(data.sketches[idx[:n_sketch]]), to_tensor(data.images[idx[n_sketch:]])])
    if crop == 0:
        return x
    size = x.shape[-1]
    box = torch.from_numpy(data.boxes[idx]).float()
    centre = torch.stack([box[:, 0] + box[:, 2], box[:, 1] + box[:, 3]], 1) / 2
    centre += (torch.rand(n, 2, generator=gen) - 0.5) * crop / 2
    anywhere = torch.rand(n, 2, generator=gen) * size
    centre = torch.where(torch.rand(n, 1, generator=gen) < _CHARACTER_CROPS, centre, anywhere)
    corner = (centre - crop / 2).round().long().clamp(0, size - crop)
    return torch.stack([img[:, y:y + crop, x0:x0 + crop] for img, (x0, y) in zip(x, corner.tolist(), strict=True)])


def train_vae(cfg: TrainConfig, p: Preset, data: WorldData, path: Path) -> tuple[AutoencoderKL, dict]:
    """Train (or resume, or just load when finished) the VAE; returns it and its summary."""
    torch.manual_seed(cfg.seed)  # model initialisation
    vae = build_vae(p)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    state = checkpoint.load(path)
    progress = checkpoint.Progress("vae", cfg.vae_steps, cfg.log_every, log, state)
    if state is not None:
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if state.get("summary"):
            vae.register_to_config(scaling_factor=state["summary"]["scaling_factor"])
            return vae.eval(), state["summary"]
        log.info("vae: resuming at step %d", progress.step)

    def snapshot(summary: dict | None = None) -> None:
        checkpoint.save(path, {"model": vae.state_dict(), "optimizer": opt.state_dict(), **progress.state(),
                               "summary": summary})

    cadence = checkpoint.Cadence(cfg.checkpoint_minutes)
    vae.train()
    for step in progress.steps():
        gen = checkpoint.step_generator(cfg.seed, "vae", step)
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg.vae_lr, step, cfg.vae_steps, cfg.warmup)
        x = _batch(data, cfg.vae_batch, gen, cfg.vae_crop)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        rec = (recon - x).abs().mean()
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = rec + cfg.vae_kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        progress.record(rec.item(), f" (l1), kl {kl.item():.3f}")
        if cadence.due():
            snapshot()
    vae.eval()
    scale = measure_scaling_factor(vae, data, cfg.seed)
    vae.register_to_config(scaling_factor=scale)
    summary = {"steps": progress.step, "seconds": round(progress.elapsed, 1), "final_l1": progress.mean(),
               "scaling_factor": scale}
    log.info("vae done: %s", summary)
    snapshot(summary)
    return vae, summary


@torch.no_grad()
def measure_scaling_factor(vae: AutoencoderKL, data: WorldData, seed: int, n: int = 1024) -> float:
    """1 / std of the latents of images and sketches, so scaled latents have unit variance (as SD's 0.18215)."""
    x = _batch(data, min(n, len(data)), checkpoint.step_generator(seed, "vae-scale", 0))
    latents = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in x.split(128)])
    return float(1.0 / latents.std())
