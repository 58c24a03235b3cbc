"""Settings of a demo-model training run (the flags of ``python -m sketchstory.demo.train``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    run_dir: Path  # checkpoints, cached data, log
    out_dir: Path  # final weights (diffusers layout)
    preset: str = "demo"
    seed: int = 0
    samples: int = 8000  # rendered world samples (each gives an image and a sketch)
    vae_steps: int = 2000
    vae_batch: int = 16
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6  # on the per-element KL, as SD's VAE: only a light pull towards N(0, 1)
    vae_crop: int = 32  # train the VAE on crops this big (0: whole images); see train_vae.py
    steps: int = 1200  # joint text encoder + UNet + ControlNet steps
    batch: int = 16
    lr: float = 6e-4
    warmup: int = 100
    sketch_share: float = 0.2  # share of a batch that teaches stage 1 (caption -> line sketch)
    control_share: float = 0.75  # share of image samples that get the ControlNet (the rest: text only)
    caption_dropout: float = 0.1  # empty caption, so classifier-free guidance works
    ema_decay: float = 0.999
    checkpoint_minutes: float = 3.0
    log_every: int = 50
    snr_gamma: float = 5.0  # min-SNR loss weighting (Hang et al. 2023), faster convergence; 0 disables
    threads: int = 1  # on a shared CPU, one thread per process avoids OpenMP barrier stalls
    init: str = ""  # start text encoder, UNet, ControlNet (and take the VAE) from this model folder
    page_share: float = 0.5  # share of image pages whose two panels share self-attention (pages.py)
    unsaid_share: float = 0.5  # share of a joint page's captions that leave the body colour unsaid
    unsaid_single: float = 0.15  # the same for panels trained alone
    character_weight: float = 4.0  # extra loss weight on the character's latent cells
    attention_lr_mult: float = 3.0  # learning-rate factor of attn1's queries and keys
    match_weight: float = 0.0  # weight of the page match loss on attn1 (pages.py; 0: denoising only)
    match_target: str = "colour"  # what the match loss pulls queries to: "colour" twins or "character"
    match_partner: float = 0.0  # share of a query's twin mass the match loss asks on the partner panel (0: any)
    duo_share: float = 0.0  # share of the set's pages that show two characters (data.py, duo.py)
    curriculum: int = 0  # steps over which fewer joint pages get one less noisy panel (0: none)
    probe_every: int = 250  # steps between page probes (0: none)

    def __post_init__(self) -> None:
        for name in ("samples", "vae_steps", "vae_batch", "steps", "batch", "log_every", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch % 2:
            raise ValueError(f"batch must be even (it is made of two-panel pages), got {self.batch}")
        for name in ("sketch_share", "control_share", "caption_dropout", "page_share", "unsaid_share",
                     "unsaid_single", "match_partner", "duo_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")

        if self.match_target not in ("colour", "character"):
            raise ValueError(f"match_target must be 'colour' or 'character', got {self.match_target!r}")
        if self.vae_crop < 0 or self.vae_crop % 8:
            raise ValueError(f"vae_crop must be 0 or a positive multiple of 8, got {self.vae_crop}")

    def as_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def learning_rate(base: float, step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))
