"""Evaluation metrics on cases with known answers, and the learned ones on tiny models of their real classes."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from sketchstory.eval.edges import edge_agreement, sketch_fidelity
from sketchstory.eval.evaluate import EvalOptions, load_scorers
from sketchstory.eval.learned import ClipScorer, DinoScorer, mean_pairwise_similarity
from sketchstory.eval.psnr import folder_hash, mean_image, psnr
from sketchstory.models import ModelLoadError
from sketchstory.sketches import canny_condition
from sketchstory.tokenizer import clip_tokenizer


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIPModel and its processor (OpenAI's BPE, 32 px crops), saved like a hub snapshot."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = tmp_path_factory.mktemp("clip")
    layers = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config={**layers, "vocab_size": 49408, "max_position_embeddings": 77},
                         vision_config={**layers, "image_size": 32, "patch_size": 8},
                         projection_dim=16)).save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=processor, tokenizer=clip_tokenizer()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Dinov2Model and its image processor, saved like a hub snapshot."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("dino")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2,
                             image_size=32, patch_size=8)).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def vertical_line(x: int, size: int = 64) -> np.ndarray:
    edges = np.zeros((size, size), bool)
    edges[8:56, x] = True
    return edges


def drawing(offset: int = 0, size: int = 64) -> Image.Image:
    page = np.full((size, size), 255, np.uint8)
    cv2.rectangle(page, (12 + offset, 14), (40 + offset, 50), 0, 2)
    cv2.circle(page, (26 + offset, 30), 6, 0, 2)
    return Image.fromarray(page).convert("RGB")


def test_edge_agreement_known_answers() -> None:
    same = edge_agreement(vertical_line(10), vertical_line(10), tolerance=1)
    assert (same.precision, same.recall, same.f1, same.chamfer_px) == (1.0, 1.0, 1.0, 0.0)
    shifted = edge_agreement(vertical_line(14), vertical_line(10), tolerance=1)
    assert shifted.f1 == 0.0 and shifted.chamfer_px == pytest.approx(4.0)
    assert edge_agreement(vertical_line(14), vertical_line(10), tolerance=4).f1 == 1.0
    nothing = edge_agreement(np.zeros((64, 64), bool), vertical_line(10))
    assert nothing.f1 == 0.0 and nothing.chamfer_px == pytest.approx(math.hypot(64, 64))


def test_sketch_fidelity_is_one_for_the_sketch_itself_and_drops_with_a_shift() -> None:
    canny = canny_condition(drawing())
    assert sketch_fidelity(drawing(), canny).f1 == 1.0
    near, far = sketch_fidelity(drawing(2), canny), sketch_fidelity(drawing(8), canny)
    assert 0.0 <= far.f1 < near.f1 < 1.0
    assert 0.0 < near.chamfer_px < far.chamfer_px
    # A larger rendering of the same drawing is measured on the condition's grid.
    assert sketch_fidelity(drawing().resize((128, 128), Image.Resampling.NEAREST), canny).f1 > 0.8


def test_psnr_against_the_cached_mean_image(tmp_path: Path) -> None:
    refs, cache = tmp_path / "refs", tmp_path / "cache"
    refs.mkdir()
    Image.new("RGB", (20, 10), (0, 0, 0)).save(refs / "a.png")
    Image.new("RGB", (10, 10), (200, 200, 200)).save(refs / "b.jpg", quality=100)
    mean = mean_image(refs, (8, 8), cache)
    assert mean.shape == (8, 8, 3) and np.allclose(mean, 100, atol=1)
    cached = cache / f"mean-{folder_hash(refs)}-8x8.npy"
    assert cached.exists()
    np.save(cached, np.full((8, 8, 3), 110, np.float32))  # the cache, not the pictures, answers now
    assert psnr(Image.new("RGB", (8, 8), (100, 100, 100)), mean_image(refs, (8, 8), cache)) \
        == pytest.approx(10 * math.log10(255**2 / 100))
    Image.new("RGB", (10, 10), (50, 50, 50)).save(refs / "c.png")  # new content, new key
    assert np.allclose(mean_image(refs, (8, 8), cache), 250 / 3, atol=1)
    assert psnr(Image.new("RGB", (8, 8), (7, 7, 7)), np.full((8, 8, 3), 7, np.float32)) == math.inf


def test_clip_and_dino_run_on_tiny_models_loaded_from_folders(tiny_clip: Path, tiny_dino: Path) -> None:
    images = [drawing(0), drawing(0), drawing(8)]
    clip = ClipScorer(str(tiny_clip))
    emb = clip.images(images)
    assert emb.shape == (3, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(emb[0] @ emb[1]) == pytest.approx(1.0, abs=1e-5)
    text = clip.texts(["a wizard in a forest", "a castle " * 60])  # long prompts are truncated to 77 tokens
    assert text.shape == (2, 16)
    dino = DinoScorer(str(tiny_dino))
    assert dino.images(images).shape == (3, 32)
    sim = mean_pairwise_similarity(emb)
    assert sim is not None and -1.0 <= sim <= 1.0
    assert mean_pairwise_similarity(emb[:1]) is None


def test_missing_models_offline_are_skipped_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="huggingface-cli download openai/clip-vit-base-patch32") as err:
        ClipScorer("openai/clip-vit-base-patch32")
    assert str(err.value).endswith("pass it with --clip DIR.")
    with pytest.raises(ModelLoadError, match="does not exist"):
        DinoScorer(str(tmp_path / "no-such-folder"))
    clip, dino, status = load_scorers(EvalOptions(clip="openai/clip-vit-base-patch32", dino=None))
    assert clip is None and dino is None
    assert status["clip"]["status"] == "skipped" and "HF_HUB_OFFLINE" in status["clip"]["note"]
    assert status["dino"]["status"] == "skipped"
    assert status["dreamsim"]["status"] == status["nima"]["status"] == "blocked"


class MeanColour:
    """A stand-in image scorer: the unit mean colour of each picture, so similarities are known."""

    def images(self, images: list[Image.Image]) -> torch.Tensor:
        means = torch.tensor(np.array([np.asarray(im, np.float32).mean(axis=(0, 1)) for im in images]))
        return torch.nn.functional.normalize(means, dim=-1)


def test_per_character_similarity_compares_each_character_with_itself_only(tmp_path: Path) -> None:
    import json

    from sketchstory.eval.evaluate import evaluate
    from sketchstory.eval.runs import load_run

    colours = [(200, 0, 0), (0, 0, 200), (200, 0, 0), (0, 200, 200)]  # fox, owl, fox, owl+fox
    casts = [["fox"], ["owl"], ["fox"], ["owl", "fox"]]
    (tmp_path / "run" / "panels").mkdir(parents=True)
    for n, colour in enumerate(colours):
        Image.new("RGB", (8, 8), colour).save(tmp_path / "run" / "panels" / f"panel_{n:02d}.png")
    story = {"characters": [{"name": "fox"}, {"name": "owl"}],
             "panels": [{"prompt": f"panel {n}", "characters": cast} for n, cast in enumerate(casts)]}
    (tmp_path / "run" / "story.json").write_text(json.dumps(story))
    run = load_run(tmp_path / "run", "ours")
    assert [p.characters for p in run.panels] == [("fox",), ("owl",), ("fox",), ("fox", "owl")]
    scorer = MeanColour()
    metrics = evaluate([run], EvalOptions(), scorers=(None, scorer, {}))["runs"][0]["metrics"]  # type: ignore[arg-type]
    cyan = 1 / math.sqrt(2)  # cos(red, cyan) = 0, cos(blue, cyan) = 1/sqrt(2)
    fox = (1 + 0 + 0) / 3  # pairs (0,2) (0,3) (2,3)
    assert metrics["dino_character"] == pytest.approx((fox + cyan) / 2)
    assert metrics["dino"] == pytest.approx((0 + 1 + 0 + 0 + cyan + 0) / 6)
