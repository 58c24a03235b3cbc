"""Train the bundled demo models on the toy world: ``python -m sketchstory.demo.train``.

Phases, each resumable from its checkpoint under ``--run-dir`` (rerun the same command after an
interruption and it continues where it stopped; a finished phase is loaded, not retrained):

1. render the world's training set (cached),
2. the VAE, then its latent ``scaling_factor`` measured,
3. text encoder + UNet + ControlNet jointly (stage 1 sketches and stage 2 images in one UNet),
4. export: EMA weights in fp16, diffusers layout, to ``--out`` (``vae/ text_encoder/ tokenizer/
   unet/ controlnet/ scheduler/`` + ``model_index.json`` + ``training.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch
from diffusers import AutoencoderKL, StableDiffusionControlNetPipeline

from sketchstory.atomic import atomic_write_text
from sketchstory.demo.architecture import preset, sampling_scheduler
from sketchstory.demo.data import load_or_render
from sketchstory.demo.train_config import TrainConfig
from sketchstory.demo.train_diffusion import Models, prepare, train_diffusion
from sketchstory.demo.train_vae import train_vae
from sketchstory.tokenizer import clip_tokenizer

log = logging.getLogger("sketchstory.demo.train")
WEIGHTS_DIR = Path(__file__).parent / "weights"
PROBE_PAGES = 48


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) every phase and export; returns the summary also written to training.json."""
    p = preset(cfg.preset)
    torch.set_num_threads(cfg.threads)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    data = load_or_render(cfg.run_dir / "world.npz", cfg.samples, p.image_size, cfg.seed, cfg.duo_share)
    if cfg.init:  # a fine-tune keeps the VAE, so the latents keep their meaning
        vae = AutoencoderKL.from_pretrained(cfg.init, subfolder="vae", torch_dtype=torch.float32)
        vae_summary = {"from": str(cfg.init), "scaling_factor": vae.config.scaling_factor}
    else:
        vae, vae_summary = train_vae(cfg, p, data, cfg.run_dir / "vae.pt")
    tokenizer = clip_tokenizer()
    tensors = prepare(vae, tokenizer, data, cfg.run_dir / "latents.pt")
    # Held-out pages (a seed no training sample uses) for the page probe.
    held_out = load_or_render(cfg.run_dir / "probe.npz", PROBE_PAGES * 2, p.image_size, cfg.seed + 1_000_003)
    probe = prepare(vae, tokenizer, held_out, cfg.run_dir / "probe-latents.pt")
    models, diffusion_summary = train_diffusion(cfg, p, tensors, cfg.run_dir / "diffusion.pt", probe)
    summary = {
        "config": cfg.as_json(),
        "vae": vae_summary,
        "diffusion": diffusion_summary,
        "parameters": {name: sum(x.numel() for x in m.parameters())
                       for name, m in ({"vae": vae} | models.named()).items()},
        "this_session_seconds": round(time.monotonic() - start, 1),
    }
    export(vae, models, cfg.out_dir)
    atomic_write_text(cfg.out_dir / "training.json", json.dumps(summary, indent=2) + "\n")
    log.info("exported to %s: %s", cfg.out_dir, json.dumps(summary))
    return summary


def export(vae: AutoencoderKL, models: Models, out: Path) -> None:
    """Save in fp16 safetensors as a StableDiffusionControlNetPipeline folder (components load alone too)."""
    pipe = StableDiffusionControlNetPipeline(
        vae=vae, text_encoder=models.text_encoder, tokenizer=clip_tokenizer(), unet=models.unet,
        controlnet=models.controlnet, scheduler=sampling_scheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    modules: list[torch.nn.Module] = [vae, models.text_encoder, models.unet, models.controlnet]
    for m in modules:
        m.half()
    pipe.save_pretrained(out, safe_serialization=True)
    for m in modules:
        m.float()
    # fp16 keeps the files small, but a CPU computes in fp32: diffusers upcasts by default, and
    # transformers follows the config's dtype, so the text encoder's config asks for fp32.
    config = out / "text_encoder" / "config.json"
    atomic_write_text(config, json.dumps(json.loads(config.read_text()) | {"dtype": "float32"}, indent=2) + "\n")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sketchstory.demo.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, default=Path("runs/demo-train"), help="checkpoints, cached data, train.log")
    ap.add_argument("--out", dest="out_dir", type=Path, default=WEIGHTS_DIR, help="where the final weights go")
    help_text = {
        "preset": "model widths: 'demo' (shipped) or 'tiny' (smoke tests)",
        "seed": "seeds the data, the initialisation and every step's draws",
        "samples": "number of rendered world samples",
        "vae_steps": "VAE training steps", "vae_batch": "VAE batch size", "vae_lr": "VAE peak learning rate",
        "vae_kl_weight": "weight of the per-element KL term of the VAE",
        "vae_crop": "VAE training crop size, centred on the character 3 times in 4 (0: whole images)",
        "steps": "joint text encoder + UNet + ControlNet steps", "batch": "diffusion batch size",
        "lr": "diffusion peak learning rate", "warmup": "linear warm-up steps (both phases)",
        "sketch_share": "share of each batch spent on stage 1 (caption -> sketch)",
        "control_share": "share of image samples trained with the ControlNet",
        "caption_dropout": "share of captions replaced by '' (for classifier-free guidance)",
        "ema_decay": "EMA decay of the exported weights",
        "checkpoint_minutes": "wall-clock minutes between checkpoints (0: only at the end of a phase)",
        "snr_gamma": "min-SNR-gamma loss weighting (0: plain epsilon MSE)",
        "log_every": "steps between log lines", "threads": "torch CPU threads",
        "init": "fine-tune: start from this model folder (its VAE is kept) instead of training from scratch",
        "page_share": "share of image pages whose two panels share self-attention",
        "unsaid_share": "share of joint pages' captions without the body colour",
        "unsaid_single": "share of lone panels' captions without the body colour",
        "character_weight": "extra loss weight on the character's latent cells",
        "attention_lr_mult": "learning-rate factor for attn1's queries and keys",
        "match_weight": "weight of the page match loss on attn1 (0: denoising loss only)",
        "match_partner": "share of each query's twin attention the match loss asks on the other panel of the page (0: any)",
        "match_target": "what the match loss pulls each query to: 'colour' (its same-coloured cells in both panels) or 'character'",
        "duo_share": "share of the training set's pages that show two characters (a pair, both in the first panel)",
        "curriculum": "steps over which joint pages stop getting one less noisy panel (0: none)",
        "probe_every": "steps between page probes (0: none)",
    }
    for f in fields(TrainConfig):
        if f.name in ("run_dir", "out_dir"):
            continue
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                        help=f"{help_text[f.name]} (default: %(default)s)")
    return ap


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    if cfg.init and not (Path(cfg.init) / "model_index.json").is_file():
        parser.error(f"--init {cfg.init}: not a model folder (no model_index.json); give a diffusers folder such as "
                     "src/sketchstory/demo/weights")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    # The package logger, not the root one: the log file gets only this run's lines.
    demo_log = logging.getLogger("sketchstory.demo")
    demo_log.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [logging.FileHandler(cfg.run_dir / "train.log"), logging.StreamHandler(sys.stderr)]
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        demo_log.addHandler(h)
    try:
        log.info("config: %s", json.dumps(cfg.as_json()))
        train(cfg)
    finally:
        for h in handlers:
            demo_log.removeHandler(h)
            h.close()


if __name__ == "__main__":
    main()
