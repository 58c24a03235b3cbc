"""SDXL in stage 2: registry, loading, the published architecture, layer mapping and memory maths.

The runner's SDXL arithmetic (second text encoder, size/crop conditioning) is checked against
diffusers' own ``StableDiffusionXLControlNetPipeline`` in tests/test_attach.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import write_story
from sketchstory.attention.budget import layer_shapes, panel_bytes
from sketchstory.attention.layers import first_maga_layer, self_attention_layers
from sketchstory.bench import architectures_sdxl as arch
from sketchstory.cli import main
from sketchstory.models import REGISTRY, ModelLoadError, default_sketch_model, load, resolve_spec


@pytest.fixture(scope="module")
def tiny_xl():
    return load(REGISTRY["tiny-sdxl"], "cpu")


def test_sdxl_registry_names_its_controlnet_and_sketch_model() -> None:
    # Offline, sdxl fails with sd15's message: tests/test_models.py::test_hub_model_offline_says_what_to_pass
    assert REGISTRY["sdxl"].controlnet == "diffusers/controlnet-canny-sdxl-1.0"
    assert default_sketch_model("tiny-sdxl") == "tiny" and default_sketch_model("sdxl") == "sdxl"


def test_a_local_sdxl_folder_is_read_as_sdxl_and_gets_the_sdxl_controlnet(
        tiny_xl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        getattr(tiny_xl, name).save_pretrained(tmp_path / "m" / name)
    tiny_xl.scheduler("ddim").save_pretrained(tmp_path / "m" / "scheduler")
    tiny_xl.controlnet.save_pretrained(tmp_path / "cn")
    c = load(resolve_spec(str(tmp_path / "m"), str(tmp_path / "cn")), "cpu")
    assert c.is_xl and c.unet.config.addition_embed_type == "text_time"
    assert all((a == b).all() for a, b in zip(c.text_encoder_2.parameters(), tiny_xl.text_encoder_2.parameters(),
                                              strict=True))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match="diffusers/controlnet-canny-sdxl-1.0"):
        load(resolve_spec(str(tmp_path / "m")), "cpu")  # no --controlnet: SDXL's Canny, not SD1.5's


def test_the_architecture_has_the_published_parameter_counts_and_70_self_attention_layers() -> None:
    with torch.device("meta"):  # shapes only: the real thing is 19 GB in fp32
        modules = {"unet": arch.sdxl_unet(), "controlnet": arch.sdxl_controlnet(), "vae": arch.sdxl_vae(),
                   "text": arch.sdxl_text_encoder(), "text_2": arch.sdxl_text_encoder_2()}
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
    assert counts == {"unet": 2_567_463_684, "controlnet": 1_251_014_160, "vae": 83_653_863,
                      "text": 123_060_480, "text_2": 694_659_840}
    layers = self_attention_layers(list(modules["unet"].attn_processors))
    blocks = [name.split(".attentions")[0] for name in layers]
    assert [blocks.count(b) for b in dict.fromkeys(blocks)] == [4, 20, 10, 30, 6]  # down 1, down 2, mid, up 0, up 1
    first = first_maga_layer(8, len(layers))
    assert (len(layers), first) == (70, 35)
    assert layers[first] == "up_blocks.0.attentions.0.transformer_blocks.1.attn1.processor"
    shapes = layer_shapes(modules["unet"], (128, 128))  # 1024 px
    assert [(s.tokens, s.channels) for s in shapes[:4]] == [(4096, 640)] * 4
    assert {(s.tokens, s.channels) for s in shapes[4:64]} == {(1024, 1280)}
    # One panel's memory at the defaults (layers 35-69, steps 24-49 of 50, both guidance branches, fp16):
    assert panel_bytes(shapes, first, 26, 2, 2, None) == 2 * 2 * 26 * 2 * (29 * 1024 * 1280 + 6 * 4096 * 640)


def test_generate_renders_an_sdxl_story_and_the_bank_is_what_the_maths_says(tiny_xl, tmp_path: Path) -> None:
    path = write_story(tmp_path / "story", 3, model="tiny-sdxl", steps=4, mode="sequential",
                       maga={"start_step": 1, "memory": "all", "token_budget": 20})
    out = tmp_path / "out"
    assert main(["generate", str(path), "-o", str(out), "-q"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["maga_first_layer"] == 6 and info["maga_calls"] > 0
    shapes = layer_shapes(tiny_xl.unet, (16, 16))
    assert [s.tokens for s in shapes] == [64] * 12
    # Panels 0 and 1 are kept for panel 2 (which no one reads): 3 MAGA steps, 2 branches, fp32.
    assert info["memory_bank_peak_bytes"] == 2 * panel_bytes(shapes, 6, 3, 2, 4, 20)
