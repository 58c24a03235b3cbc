"""Metrics with learned models: CLIP-T (prompt alignment), CLIP-I and DINO (identity consistency).

Every model comes from a hub id or a local folder through ``sketchstory.models.fetch``, the one
place that resolves sources and explains, offline, what to download and pass instead.
"""

from __future__ import annotations

import itertools
import re

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, CLIPModel, CLIPProcessor

from sketchstory.models import ModelLoadError, fetch

CLIP_DEFAULT = "openai/clip-vit-base-patch32"
DINO_DEFAULT = "facebook/dinov2-base"
WEIGHT_FILES = ["*.json", "*.txt", "*.safetensors"]


def _fetch(source: str, what: str, flag: str) -> str:
    try:
        return fetch(source, what, WEIGHT_FILES)
    except ModelLoadError as err:
        # fetch's advice names generate's --model flag; point at this command's flag instead.
        raise ModelLoadError(re.sub(r"pass it with --model DIR.*$", f"pass it with {flag} DIR.", str(err))) from None


def _load(model_cls: type, processor_cls: type, source: str, device: str, what: str, flag: str,
          needs: str) -> tuple[torch.nn.Module, object]:
    """A transformers model and its processor from ``source``, in eval mode on ``device``."""
    path = _fetch(source, what, flag)
    try:
        model = model_cls.from_pretrained(path).eval()
        processor = processor_cls.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load the {what} from {path}: {err}. Pass a folder with {needs}.") from None
    torch.nn.Module.to(model, device)  # the base method: transformers' override confuses type checkers
    return model, processor


def _features(output: torch.Tensor | object) -> torch.Tensor:
    # transformers 4 returns the projected features; 5 returns an output whose pooler is projected.
    return output if isinstance(output, torch.Tensor) else output.pooler_output  # type: ignore[attr-defined]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


def mean_pairwise_similarity(embeddings: torch.Tensor) -> float | None:
    """Mean cosine similarity over all pairs of rows (unit vectors); None for fewer than two."""
    pairs = list(itertools.combinations(range(len(embeddings)), 2))
    if not pairs:
        return None
    return float(sum(float(embeddings[i] @ embeddings[j]) for i, j in pairs) / len(pairs))


class ClipScorer:
    """CLIPModel + CLIPProcessor: unit image and text embeddings in CLIP's joint space."""

    def __init__(self, source: str = CLIP_DEFAULT, device: str = "cpu") -> None:
        self.model, self.processor = _load(CLIPModel, CLIPProcessor, source, device, "CLIP model", "--clip",
                                           "a CLIPModel (config.json, model.safetensors) and its processor files")
        self.source, self.device = source, device

    @torch.inference_mode()
    def images(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return _unit(_features(self.model.get_image_features(pixel_values=pixels)))

    @torch.inference_mode()
    def texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True,
                                max_length=self.model.config.text_config.max_position_embeddings)
        return _unit(_features(self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device))))


class DinoScorer:
    """A DINO ViT (Dinov2Model, or ViTModel for DINO v1): the unit CLS embedding of each image."""

    def __init__(self, source: str = DINO_DEFAULT, device: str = "cpu") -> None:
        self.model, self.processor = _load(AutoModel, AutoImageProcessor, source, device, "DINO model", "--dino",
                                           "a Dinov2Model or ViTModel (config.json, model.safetensors) and "
                                           "preprocessor_config.json")
        self.source, self.device = source, device

    @torch.inference_mode()
    def images(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return _unit(self.model(pixel_values=pixels).last_hidden_state[:, 0])
