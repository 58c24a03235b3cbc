"""``--dtype``: the dtype a run loads its models in, and auto's bf16 on CPUs and models where it pays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sketchstory.models.device as device
from conftest import write_story
from sketchstory.cli import main


def test_named_dtypes_and_the_auto_defaults() -> None:
    cpu = torch.device("cpu")
    assert device.default_device("cpu") == (cpu, torch.float32)
    assert device.default_device("cpu", "auto") == (cpu, torch.float32)
    assert device.default_device("cpu", "bf16") == (cpu, torch.bfloat16)
    assert device.default_device("cpu", "fp16") == (cpu, torch.float16)
    with pytest.raises(ValueError, match="use auto, fp32, bf16, fp16"):
        device.default_device("cpu", "int8")


def test_auto_takes_bf16_only_for_large_models_on_cpus_with_native_bf16(tiny, monkeypatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert not device.prefers_bf16(cpu, "auto", tiny.unet)  # small: per-layer overhead, not arithmetic
    monkeypatch.setattr(device, "BF16_MIN_PARAMETERS", 1)
    assert device.prefers_bf16(cpu, "auto", tiny.unet) and device.prefers_bf16(cpu, None, tiny.unet)
    assert not device.prefers_bf16(cpu, "fp32", tiny.unet)  # an explicit dtype wins
    assert not device.prefers_bf16(torch.device("meta"), "auto", tiny.unet)  # the CPU's rule only
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert not device.prefers_bf16(cpu, "auto", tiny.unet)


def test_generate_in_bf16_is_deterministic_and_close_to_fp32(story_file: Path, tmp_path: Path) -> None:
    runs = {name: tmp_path / name for name in ("fp32", "bf16", "bf16-again")}
    for name, out in runs.items():
        assert main(["generate", str(story_file), "-o", str(out), "-q", "--dtype", name.removesuffix("-again")]) == 0
    assert json.loads((runs["bf16"] / "run.json").read_text())["dtype"] == "bfloat16"
    assert json.loads((runs["fp32"] / "run.json").read_text())["dtype"] == "float32"
    for n in range(3):
        px = {k: np.asarray(Image.open(out / f"panels/panel_{n:02d}.png"), dtype=np.int16) for k, out in runs.items()}
        assert (px["bf16"] == px["bf16-again"]).all()
        assert np.abs(px["bf16"] - px["fp32"]).mean() <= 2  # the bound: 2 levels of 255 on average
