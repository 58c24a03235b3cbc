"""Model loading: registry, clear offline errors, tiny models of the real classes, tokenizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from transformers import CLIPTextModel

from sketchstory.models import DEMO_DIR, REGISTRY, ModelLoadError, load, resolve_spec
from sketchstory.tokenizer import clip_tokenizer


@pytest.mark.parametrize(("name", "hub_id"), [("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
                                               ("sdxl", "stabilityai/stable-diffusion-xl-base-1.0")])
def test_hub_model_offline_says_what_to_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str,
                                             hub_id: str) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(ModelLoadError) as err:
        load(REGISTRY[name], "cpu")
    msg = str(err.value)
    assert hub_id in msg and "HF_HUB_OFFLINE" in msg
    assert "--model DIR" in msg and "huggingface-cli download" in msg


def test_missing_local_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load(resolve_spec(str(tmp_path / "nowhere")), "cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load(resolve_spec("./model.safetensors"), "cpu")


def test_a_controlnet_pipeline_folder_brings_its_own_controlnet(tmp_path: Path) -> None:
    """A folder exported by ``sketchstory.demo.train`` (or any saved ControlNet pipeline) is a whole model."""
    copy = tmp_path / "my-demo"
    shutil.copytree(DEMO_DIR, copy)
    spec = resolve_spec(str(copy))
    assert spec.controlnet == str(copy / "controlnet")
    assert load(spec, "cpu").controlnet is not None  # loads offline, no hub ControlNet asked for
    assert resolve_spec(str(copy), "elsewhere").controlnet == "elsewhere"  # --controlnet still wins
    shutil.rmtree(copy / "controlnet")
    assert resolve_spec(str(copy)).controlnet is None  # then the family's Canny ControlNet, as before


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(ModelLoadError, match="diffusers folder"):
        load(resolve_spec(str(tmp_path / "junk")), "cpu")


def test_local_diffusers_folder_round_trip(tiny, tmp_path: Path) -> None:
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        getattr(tiny, name).save_pretrained(tmp_path / "m" / name)
    tiny.scheduler("ddim").save_pretrained(tmp_path / "m" / "scheduler")
    tiny.controlnet.save_pretrained(tmp_path / "cn")
    c = load(resolve_spec(str(tmp_path / "m"), str(tmp_path / "cn")), "cpu")
    assert isinstance(c.unet, UNet2DConditionModel) and isinstance(c.controlnet, ControlNetModel)
    assert isinstance(c.vae, AutoencoderKL) and isinstance(c.text_encoder, CLIPTextModel)
    for a, b in zip(c.unet.parameters(), tiny.unet.parameters(), strict=True):
        assert (a == b).all()


def test_tiny_models_are_the_real_classes_and_deterministic(tiny) -> None:
    again = load(REGISTRY["tiny"], "cpu")
    assert isinstance(again.unet, UNet2DConditionModel) and isinstance(again.controlnet, ControlNetModel)
    assert all((a == b).all() for a, b in zip(again.unet.parameters(), tiny.unet.parameters(), strict=True))
    assert tiny.vae_scale == 2


def test_clip_tokenizer_is_openai_clip() -> None:
    ids = clip_tokenizer()("a photo of a cat").input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]  # the ids of openai/clip-vit-large-patch14
