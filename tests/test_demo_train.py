"""Demo-model training: a two-step smoke run, exact resumption, and the shipped weights."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    UNet2DConditionModel,
)
from transformers import CLIPTextModel, CLIPTokenizer

from sketchstory.demo import checkpoint, train_diffusion
from sketchstory.demo.architecture import NOISE_SCHEDULE
from sketchstory.demo.data import control_image, render_world
from sketchstory.demo.train import WEIGHTS_DIR, main, train
from sketchstory.demo.train_config import TrainConfig, learning_rate
from sketchstory.demo.world import sample

SUBFOLDERS = ("vae", "text_encoder", "tokenizer", "unet", "controlnet", "scheduler")


def _tiny(tmp_path: Path, **overrides: object) -> TrainConfig:
    settings = {"preset": "tiny", "samples": 16, "vae_steps": 2, "vae_batch": 4, "steps": 2, "batch": 4,
                "warmup": 1, "log_every": 1, "checkpoint_minutes": 0.0}
    return TrainConfig(run_dir=tmp_path / "run", out_dir=tmp_path / "weights", **(settings | overrides))


def _load_all(folder: Path) -> dict[str, object]:
    return {
        "vae": AutoencoderKL.from_pretrained(folder, subfolder="vae"),
        "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder"),
        "tokenizer": CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
        "unet": UNet2DConditionModel.from_pretrained(folder, subfolder="unet"),
        "controlnet": ControlNetModel.from_pretrained(folder, subfolder="controlnet"),
        "scheduler": DDIMScheduler.from_pretrained(folder, subfolder="scheduler"),
    }


@torch.no_grad()
def _check_shapes(m: dict, image_size: int) -> None:
    """Every model runs at the shapes the pipeline uses: 4x smaller latents, 77 tokens, 3-channel control."""
    lat = image_size // 4
    for model in (m["vae"], m["text_encoder"], m["unet"], m["controlnet"]):
        assert model.dtype == torch.float32  # stored in fp16, loaded for CPU compute by default
    image = torch.rand(1, 3, image_size, image_size) * 2 - 1
    z = m["vae"].encode(image).latent_dist.mean
    assert z.shape == (1, 4, lat, lat)
    assert m["vae"].decode(z).sample.shape == image.shape
    ids = m["tokenizer"](["a wizard in a blue robe standing in a forest, on the left", ""], padding="max_length",
                         max_length=m["tokenizer"].model_max_length, return_tensors="pt").input_ids
    text = m["text_encoder"](ids).last_hidden_state
    assert text.shape == (2, 77, m["unet"].config.cross_attention_dim)
    noisy = torch.randn(2, 4, lat, lat)
    t = torch.tensor([500, 500])
    cond = torch.from_numpy(control_image(sample(0, image_size).sketch)).permute(2, 0, 1)[None].float() / 255
    down, mid = m["controlnet"](noisy, t, text, controlnet_cond=cond.repeat(2, 1, 1, 1), return_dict=False)
    out = m["unet"](noisy, t, text, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    assert {k: m["scheduler"].config[k] for k in NOISE_SCHEDULE} == NOISE_SCHEDULE


def test_two_step_smoke_run_exports_loadable_models(tmp_path: Path) -> None:
    summary = train(_tiny(tmp_path))
    out = tmp_path / "weights"
    assert all((out / sub).is_dir() for sub in SUBFOLDERS)
    assert (out / "model_index.json").exists() and (tmp_path / "run" / "world.npz").exists()
    assert summary["vae"]["steps"] == 2 and summary["diffusion"]["steps"] == 2
    assert json.loads((out / "training.json").read_text())["diffusion"]["steps"] == 2
    _check_shapes(_load_all(out), image_size=32)


def test_cli_flags_reach_the_config(tmp_path: Path) -> None:
    main(["--preset", "tiny", "--samples", "8", "--vae-steps", "1", "--vae-batch", "2", "--steps", "1",
          "--batch", "2", "--warmup", "1", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "w")])
    config = json.loads((tmp_path / "w" / "training.json").read_text())["config"]
    assert config["samples"] == 8 and config["steps"] == 1 and config["preset"] == "tiny"
    assert (tmp_path / "run" / "train.log").read_text().count("diffusion done") == 1


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = {"steps": 4, "vae_steps": 3, "checkpoint_minutes": 1e-9}  # a checkpoint after every step
    straight = train(_tiny(tmp_path / "a", **steps))

    real_save = checkpoint.save

    def interrupt_after_step_two(path: Path, state: dict) -> None:
        real_save(path, state)
        if path.name == "diffusion.pt" and state["step"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_diffusion.checkpoint, "save", interrupt_after_step_two)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(tmp_path / "b", **steps))
    monkeypatch.setattr(train_diffusion.checkpoint, "save", real_save)
    resumed = train(_tiny(tmp_path / "b", **steps))

    assert resumed["diffusion"]["final_loss"] == pytest.approx(straight["diffusion"]["final_loss"], rel=1e-5)
    a = UNet2DConditionModel.from_pretrained(tmp_path / "a" / "weights", subfolder="unet").state_dict()
    b = UNet2DConditionModel.from_pretrained(tmp_path / "b" / "weights", subfolder="unet").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-3) for k in a)


def test_a_finished_run_extends_when_asked_for_more_steps(tmp_path: Path) -> None:
    train(_tiny(tmp_path, steps=2))
    again = train(_tiny(tmp_path, steps=2))  # finished: loads, trains nothing
    [segment] = again["diffusion"]["history"]
    assert (segment["steps_setting"], segment["lr"], segment["from"], segment["to"]) == (2, again["config"]["lr"], 0, 2)
    longer = train(_tiny(tmp_path, steps=3))
    assert longer["diffusion"]["steps"] == 3
    assert [(h["from"], h["to"], h["steps_setting"]) for h in longer["diffusion"]["history"]] == [(0, 2, 2), (2, 3, 3)]
    assert longer["diffusion"]["history"][1]["settings"]["steps"] == 3  # each segment records its settings


def test_learning_rate_warms_up_then_decays_to_a_tenth() -> None:
    lrs = [learning_rate(1.0, s, 100, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in pairwise(lrs[9:]))
    assert learning_rate(1.0, 100, 100, 10) == pytest.approx(0.1)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(run_dir=Path("r"), out_dir=Path("o"), steps=0)
    with pytest.raises(ValueError, match="sketch_share"):
        TrainConfig(run_dir=Path("r"), out_dir=Path("o"), sketch_share=1.5)


def test_control_image_is_white_canny_edges_on_black() -> None:
    edges = control_image(sample(4).sketch)
    assert edges.shape == (64, 64, 3) and set(np.unique(edges)) <= {0, 255}
    assert 0 < (edges == 255).mean() < 0.5
    with pytest.raises(ValueError, match="sketch"):
        control_image(sample(4).image)


@pytest.mark.skipif(not (WEIGHTS_DIR / "unet").is_dir(), reason="the demo weights have not been trained yet")
def test_shipped_weights_load_and_run_at_the_expected_shapes() -> None:
    models = _load_all(WEIGHTS_DIR)
    _check_shapes(models, image_size=64)
    assert models["unet"].config.cross_attention_dim == models["text_encoder"].config.hidden_size
    assert not models["unet"].config.only_cross_attention
    heads = [m.heads for name, m in models["unet"].named_modules() if name.endswith("attn1")]
    assert len(heads) == 7 and min(heads) >= 2
    size = sum(f.stat().st_size for f in WEIGHTS_DIR.rglob("*") if f.is_file())
    assert size < 25e6


def test_init_that_is_not_a_model_folder_is_refused_before_any_work(tmp_path, capsys):
    from sketchstory.demo.train import main as train_main

    with pytest.raises(SystemExit) as e:
        train_main(["--init", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "w")])
    assert e.value.code == 2 and "not a model folder" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_share_of_pages_shows_two_characters_with_their_own_colours() -> None:
    plain = render_world(8, 64, seed=3)
    mixed = render_world(8, 64, seed=3, duo_share=1.0)
    assert not any(", and " in c for c in plain.captions)
    assert all(", and " in c for c in mixed.captions[0::2])  # a page's first panel shows the pair
    for caption, unsaid in zip(mixed.captions, mixed.plain_captions, strict=True):
        assert unsaid.count(", and ") == caption.count(", and ")
        assert len(unsaid) < len(caption)  # the body colours are left out
    x0, y0, x1, y1 = mixed.boxes[0]
    assert mixed.masks[0].sum() == mixed.masks[0][y0:y1, x0:x1].sum() > 0  # the box covers both characters
    again = render_world(8, 64, seed=3, duo_share=1.0)
    assert (again.images == mixed.images).all() and again.captions == mixed.captions
    half = render_world(40, 64, seed=3, duo_share=0.5)
    assert 0 < sum(", and " in c for c in half.captions[0::2]) < 20
