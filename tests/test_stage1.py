"""Stage 1 on tiny random text-to-image pipelines of both classes (SD1.5 and SDXL) and the demo model."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from sketchstory import models
from sketchstory.models import pipelines
from sketchstory.models import DEMO_DIR, SKETCH_PREFIX, ModelLoadError, tiny_vae
from sketchstory.pipeline import stage1
from sketchstory.pipeline.stage1 import SketchOptions, generate_candidates
from sketchstory.provenance import read_png_meta
from sketchstory.story import parse_story
from sketchstory.tokenizer import clip_tokenizer

FAST = SketchOptions(candidates=2, keep_pictures=True, progress=False)


def tiny_sdxl() -> StableDiffusionXLPipeline:
    """The SDXL pipeline class with small random parts: two text encoders, a text_time UNet."""
    torch.manual_seed(0)
    text = CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                          vocab_size=49408, max_position_embeddings=77, projection_dim=32,
                          bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=32,
        # SDXL's micro-conditioning: pooled text (32) + six size/crop numbers embedded at 8 each.
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8,
        cross_attention_dim=64,  # both encoders' hidden states side by side
    )
    pipe = StableDiffusionXLPipeline(
        vae=tiny_vae(), text_encoder=CLIPTextModel(text), text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(), unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         steps_offset=1, timestep_spacing="leading"),
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


STORY = parse_story({
    "characters": [{"name": "wizard", "description": "in a red cape"}],
    "style": "oil painting",
    "panels": [{"prompt": "the wizard in a forest", "seed": 3}, {"prompt": "a cat on a wall", "seed": 4}],
    "settings": {"model": "tiny", "width": 32, "height": 24, "steps": 2},
})


@pytest.fixture(scope="module")
def tiny_sd15() -> StableDiffusionPipeline:
    return pipelines.load_pipeline(models.SKETCH_REGISTRY["tiny"], "cpu")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_candidates_are_sketches_with_seeds_reproducible_and_distinct(kind: str, tiny_sd15, tmp_path: Path) -> None:
    pipe = tiny_sd15 if kind == "sd15" else tiny_sdxl()
    spec = models.SKETCH_REGISTRY["tiny"]
    folders = {0: tmp_path / "a" / "panel_00", 1: tmp_path / "a" / "panel_01"}
    got = generate_candidates(pipe, spec, STORY, folders, FAST)
    assert sorted(got) == [0, 1] and all(len(c) == 2 for c in got.values())
    first = got[0][0]
    sketch = Image.open(first.path)
    assert sketch.mode == "L" and sketch.size == (32, 24)
    assert all(c.blank or (_pixels(c.path) > 128).mean() > 0.5 for cs in got.values() for c in cs)  # ink on paper
    meta = read_png_meta(first.path)
    assert meta["seed"] == first.seed == stage1.candidate_seed(3, 0) and meta["panel_seed"] == 3
    assert meta["pipeline"] == type(pipe).__name__
    assert meta["prompt"].startswith("the wizard in a forest, in a red cape, clean black and white line art")
    assert "oil painting" not in meta["prompt"]
    assert meta["negative_prompt"] == models.LINEART_NEGATIVE
    # Candidate 1 of panel 0 again, alone: same seed, same pixels, whatever K was.
    again = generate_candidates(pipe, spec, STORY.with_panels(STORY.panels[:1]), {0: tmp_path / "b"},
                                SketchOptions(candidates=2, keep_pictures=True, progress=False))
    for k in range(2):
        assert np.array_equal(_pixels(again[0][k].path), _pixels(got[0][k].path))
        assert np.array_equal(_pixels(tmp_path / "b" / f"picture_{k:02d}.png"),
                              _pixels(folders[0] / f"picture_{k:02d}.png"))
    # Different seeds give different pictures.
    pictures = [_pixels(f / f"picture_{k:02d}.png").astype(int) for f in folders.values() for k in range(2)]
    for i in range(len(pictures)):
        for j in range(i + 1, len(pictures)):
            assert np.abs(pictures[i] - pictures[j]).mean() > 0.5
    assert len({_pixels(c.path).tobytes() for cs in got.values() for c in cs}) > 1


def test_candidate_folders_never_reuse_earlier_candidates(tmp_path: Path) -> None:
    assert stage1.candidate_folder(tmp_path, 1) == tmp_path / "panel_01"
    (tmp_path / "panel_01").mkdir()
    assert stage1.candidate_folder(tmp_path, 1) == tmp_path / "panel_01"  # empty: nothing to keep
    (tmp_path / "panel_01" / "cand_00.png").touch()
    assert stage1.candidate_folder(tmp_path, 1) == tmp_path / "panel_01-2"


def test_seeds_prompts_and_sizes() -> None:
    seeds = {stage1.candidate_seed(s, k) for s in range(20) for k in range(8)}
    assert len(seeds) == 160 and all(0 <= s < 2**63 for s in seeds)
    assert stage1.candidate_seed(7, 1) == stage1.candidate_seed(7, 1)
    assert stage1.sketch_prompt(STORY, 1, "{prompt}!") == "a cat on a wall!"
    assert stage1.generation_size(1024, 512, 512, 64) == (1024, 1024)
    w, h = stage1.generation_size(1024, 768, 512, 64)
    assert (w % 64, h % 64) == (0, 0) and abs(w / h - 1.5) < 0.1 and 0.9 < w * h / 1024**2 < 1.1
    assert models.default_sketch_model("demo") == "demo" and models.default_sketch_model("sd15") == "sdxl"
    with pytest.raises(ValueError, match="placeholder"):
        SketchOptions(template="line art")
    with pytest.raises(ValueError, match="ask for 1 to 64 candidates per panel"):
        SketchOptions(candidates=0)


def test_model_is_released_after_use(tmp_path: Path) -> None:
    with pipelines.Stage1Model(models.SKETCH_REGISTRY["tiny"], "cpu") as model:
        unet = weakref.ref(model.pipe.unet)
    gc.collect()
    assert unet() is None
    with pytest.raises(RuntimeError, match="released"):
        _ = model.pipe


def test_folders_load_as_their_class_and_missing_models_explain(tmp_path: Path, monkeypatch) -> None:
    tiny_sdxl().save_pretrained(tmp_path / "xl")
    assert pipelines.detect_kind(tmp_path / "xl") == "sdxl"
    loaded = pipelines.load_pipeline(models.resolve_sketch_model(str(tmp_path / "xl")), "cpu")
    assert isinstance(loaded, StableDiffusionXLPipeline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for model in ("sdxl", "someone/line-art-xl"):
        with pytest.raises(ModelLoadError, match="huggingface-cli download .* --local-dir DIR"):
            pipelines.load_pipeline(models.resolve_sketch_model(model), "cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        pipelines.load_pipeline(models.resolve_sketch_model(str(tmp_path / "nope.safetensors")), "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="could not load .* diffusers folder"):
        pipelines.load_pipeline(models.resolve_sketch_model(str(tmp_path / "empty")), "cpu")


def test_a_demo_layout_folder_loads_without_its_controlnet_and_uses_the_sketch_caption(tmp_path: Path) -> None:
    """The demo model's folder is a ControlNet pipeline (train.export); stage 1 needs only its UNet."""
    from diffusers import DDIMScheduler, StableDiffusionControlNetPipeline

    c = models.load(models.REGISTRY["tiny"], "cpu")
    StableDiffusionControlNetPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet, controlnet=c.controlnet,
        scheduler=DDIMScheduler.from_config(c.scheduler_config), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(tmp_path / "demo")
    spec = replace(models.SKETCH_REGISTRY["demo"], source=str(tmp_path / "demo"), native_size=32, steps=2)
    with pipelines.Stage1Model(spec, "cpu") as model:
        assert type(model.pipe) is StableDiffusionPipeline and not hasattr(model.pipe, "controlnet")
        got = generate_candidates(model.pipe, spec, STORY, {1: tmp_path / "c"}, SketchOptions(1, progress=False))
    meta = read_png_meta(got[1][0].path)
    assert meta["prompt"] == SKETCH_PREFIX + "a cat on a wall" and meta["negative_prompt"] == ""


@pytest.mark.skipif(not (DEMO_DIR / "unet").is_dir(), reason=f"demo weights not trained yet ({DEMO_DIR} has no unet/)")
def test_demo_model_draws_sketches(tmp_path: Path) -> None:
    story = parse_story({"panels": [{"prompt": "a wizard in a blue robe standing in a forest, in the middle",
                                     "seed": 1}], "settings": {"model": "demo", "width": 64, "height": 64}})
    got = stage1.sketch_story(story, {0: tmp_path}, "demo", SketchOptions(2, progress=False))
    meta = read_png_meta(got[0][0].path)
    assert meta["prompt"] == SKETCH_PREFIX + story.panels[0].prompt and meta["negative_prompt"] == ""
    # The toy world's sketches are a figure's outlines: some ink, mostly paper.
    assert any(0.01 < (_pixels(c.path) < 128).mean() < 0.5 for c in got[0])
