"""``sketchstory.maga.attach`` on stock diffusers pipelines built from the tiny models.

The promises: the same images as sketchstory's runner for the same story, nothing left behind
on exit, plain attention when the memory is empty, batched calls == sequential calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    StableDiffusionControlNetPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLControlNetPipeline,
)
from PIL import Image

from conftest import SIZE, write_story
from sketchstory import maga
from sketchstory.models import REGISTRY, load
from sketchstory.models.tiny_sdxl import tiny_sdxl_controlnet_pipeline, tiny_sdxl_pipeline
from sketchstory.pipeline.runner import RunOptions, generate
from sketchstory.story import load_story

STEPS = 4


def controlnet_pipe(tiny) -> StableDiffusionControlNetPipeline:
    pipe = StableDiffusionControlNetPipeline(
        vae=tiny.vae, text_encoder=tiny.text_encoder, tokenizer=tiny.tokenizer, unet=tiny.unet,
        controlnet=tiny.controlnet, scheduler=tiny.scheduler("ddim"), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def xl_controlnet_pipe(c) -> StableDiffusionXLControlNetPipeline:
    pipe = StableDiffusionXLControlNetPipeline(
        vae=c.vae, text_encoder=c.text_encoder, text_encoder_2=c.text_encoder_2, tokenizer=c.tokenizer,
        tokenizer_2=c.tokenizer_2, unet=c.unet, controlnet=c.controlnet, scheduler=c.scheduler("ddim"),
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def tiny_xl():
    return load(REGISTRY["tiny-sdxl"], "cpu")


def text_pipe(tiny) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline(
        vae=tiny.vae, text_encoder=tiny.text_encoder, tokenizer=tiny.tokenizer, unet=tiny.unet,
        scheduler=tiny.scheduler("ddim"), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def sdxl_pipes() -> dict:
    cpu = torch.device("cpu")
    return {"sdxl": tiny_sdxl_pipeline(cpu, torch.float32), "sdxl-controlnet": tiny_sdxl_controlnet_pipeline(cpu, torch.float32)}


@pytest.fixture(params=["sd15", "sdxl", "sdxl-controlnet"])
def any_pipe(request, tiny, sdxl_pipes):
    """(pipeline, what every call passes) for each kind of pipeline attach supports but the runner's."""
    call = {"height": SIZE, "width": SIZE, "num_inference_steps": STEPS}
    if request.param == "sd15":
        return text_pipe(tiny), call
    if request.param == "sdxl-controlnet":
        edges = np.zeros((SIZE, SIZE, 3), np.uint8)
        edges[8:24, 16] = 255
        call["image"] = Image.fromarray(edges)
    return sdxl_pipes[request.param], call


def pixels(image: Image.Image | Path) -> np.ndarray:
    return np.asarray(Image.open(image) if isinstance(image, Path) else image, np.int16)


def render_story_with_pipe(pipe, story, out: Path) -> list[Image.Image]:
    """Each panel as a diffusers user would render it: prompt, Canny picture, seed."""
    images = []
    for n in range(len(story.panels)):
        canny = out / "conditions" / f"panel_{n:02d}_canny.png"
        has_sketch = canny.exists()
        control = Image.open(canny).convert("RGB") if has_sketch else Image.new("RGB", (SIZE, SIZE))
        images.append(pipe(
            story.full_prompt(n), image=control, negative_prompt=story.negative_prompt or None,
            controlnet_conditioning_scale=1.0 if has_sketch else 0.0, height=SIZE, width=SIZE,
            num_inference_steps=STEPS, guidance_scale=5.0,
            generator=torch.Generator().manual_seed(story.panel_seed(n)),
        ).images[0])
    return images


@pytest.mark.parametrize(("model", "maga_settings"), [
    ("tiny", {"memory": "all", "start_step": 0, "start_layer": 0}),
    ("tiny", {"memory": "anchors:0+window:1", "start_step": "1/4", "strength": 1.0, "start_layer": 4}),
    ("tiny-sdxl", {"memory": "anchors:0+window:1", "start_step": "1/4", "strength": 1.0, "start_layer": 4}),
])
def test_attached_pipeline_renders_what_the_runner_renders(tiny, tiny_xl, tmp_path: Path, model: str,
                                                            maga_settings: dict) -> None:
    path = write_story(tmp_path / "story", 4, steps=STEPS, maga=maga_settings, model=model)
    story = load_story(path)
    out = tmp_path / "out"
    components = tiny_xl if model == "tiny-sdxl" else tiny
    generate(story, path.parent, out, RunOptions(progress=False), components=components)

    pipe = xl_controlnet_pipe(tiny_xl) if model == "tiny-sdxl" else controlnet_pipe(tiny)
    plain = render_story_with_pipe(pipe, story, out)
    knobs = {k: v for k, v in maga_settings.items()}
    with maga.attach(pipe, **knobs) as handle:
        attached = render_story_with_pipe(pipe, story, out)
    assert handle.panel == 4 and handle.calls == 4 and handle.run.calls > 0
    for n, image in enumerate(attached):
        assert np.abs(pixels(image) - pixels(out / "panels" / f"panel_{n:02d}.png")).max() <= 1  # 1/255
    # ... and MAGA changed the later panels, so the agreement above is not plain == plain.
    assert np.abs(pixels(attached[0]) - pixels(plain[0])).max() <= 1
    assert max(np.abs(pixels(a) - pixels(p)).max() for a, p in zip(attached[1:], plain[1:], strict=True)) > 1


def snapshot(pipe) -> dict:
    unet = pipe.unet
    return {"class": type(pipe), "processors": dict(unet.attn_processors), "pipe": dict(vars(pipe)),
            "unet": dict(vars(unet)), "hooks": (dict(unet._forward_pre_hooks), dict(unet._forward_hooks))}


def test_pipeline_after_exit_is_the_pipeline_never_attached(any_pipe) -> None:
    pipe, call = any_pipe
    call = call | {"prompt": "a wizard", "output_type": "np"}
    before, state = pipe(**call, generator=torch.Generator().manual_seed(3)).images, snapshot(pipe)
    with maga.attach(pipe, memory="all", start_step=0, start_layer=0):
        pipe(**call, generator=torch.Generator().manual_seed(4))
        during = pipe(**call, generator=torch.Generator().manual_seed(3)).images
    after = pipe(**call, generator=torch.Generator().manual_seed(3)).images
    assert np.array_equal(before, after)
    assert not np.allclose(before, during)  # the second panel did read the first
    now = snapshot(pipe)
    assert now["class"] is state["class"] and now["hooks"] == state["hooks"]
    assert all(now["processors"][k] is v for k, v in state["processors"].items())
    assert now["pipe"].keys() == state["pipe"].keys() and now["unet"].keys() == state["unet"].keys()


def test_empty_memory_is_plain_attention(any_pipe) -> None:
    pipe, call = any_pipe
    call = call | {"prompt": "a wizard", "output_type": "latent"}
    plain = [pipe(**call, generator=torch.Generator().manual_seed(s)).images for s in (1, 2)]
    with maga.attach(pipe, memory="none", start_step=0, start_layer=0) as story:
        attached = [pipe(**call, generator=torch.Generator().manual_seed(s)).images for s in (1, 2)]
    assert story.panel == 2 and len(story.memory.panels()) == 0
    for a, p in zip(attached, plain, strict=True):
        torch.testing.assert_close(a, p, rtol=0, atol=1e-6)


PROMPTS = ["a wizard in a forest", "the wizard finds a hat", "the wizard meets a dragon"]


def test_one_call_of_several_images_is_several_panels(any_pipe) -> None:
    pipe, call = any_pipe
    call = call | {"output_type": "latent"}
    if "image" in call:
        call["image"] = [call["image"]] * 3
    one = call | ({"image": call["image"][0]} if "image" in call else {})
    with maga.attach(pipe, memory="all", start_step=1, strength=1.0) as story:
        seq = torch.cat([pipe(p, generator=torch.Generator().manual_seed(s), **one).images
                         for s, p in enumerate(PROMPTS)])
    with maga.attach(pipe, memory="all", start_step=1, strength=1.0) as story:
        batched = pipe(PROMPTS, generator=[torch.Generator().manual_seed(s) for s in range(3)], **call).images
        assert story.panel == 3 and story.calls == 1
    torch.testing.assert_close(batched, seq, rtol=0, atol=1e-4)  # SDPA/conv kernels vary with batch size
    plain = pipe(PROMPTS[2], generator=torch.Generator().manual_seed(2), **one).images
    assert (plain - seq[2:]).abs().max() > 1e-2


def test_manual_panels_keep_only_the_chosen_try(tiny) -> None:
    pipe = text_pipe(tiny)
    call = {"height": SIZE, "width": SIZE, "num_inference_steps": STEPS, "output_type": "latent"}

    def render(seeds: list[int], auto: bool) -> torch.Tensor:
        with maga.attach(pipe, memory="all", start_step=1, auto=auto) as story:
            for s in seeds:
                last = pipe(PROMPTS[0], generator=torch.Generator().manual_seed(s), **call).images
            story.next_panel()
            return pipe(PROMPTS[1], generator=torch.Generator().manual_seed(9), **call).images

    # Two tries of panel 0 (seeds 5, then 6), the second kept: as if only seed 6 had been drawn.
    torch.testing.assert_close(render([5, 6], auto=False), render([6], auto=True), rtol=0, atol=0)
    assert (render([5, 6], auto=False) - render([5], auto=True)).abs().max() > 1e-3


def test_a_failed_call_leaves_no_memory_and_bad_knobs_say_what_to_give(tiny) -> None:
    pipe = text_pipe(tiny)
    stop = RuntimeError("stop")

    def interrupt(*_args):
        raise stop

    with maga.attach(pipe, memory="all", start_step=0) as story:
        with pytest.raises(RuntimeError):
            pipe("a wizard", height=SIZE, width=SIZE, num_inference_steps=STEPS, output_type="latent",
                 callback_on_step_end=interrupt)
        assert story.panel == 0 and not story.memory.panels()
        with pytest.raises(ValueError, match="already attached"):
            with maga.attach(pipe):
                pass
    with pytest.raises(ValueError, match="memory policy 'window:0'"):
        with maga.attach(pipe, memory="window:0"):
            pass
    with pytest.raises(ValueError, match="start_step"):
        with maga.attach(pipe, start_step="60/50"):
            pass


def test_the_offline_example_in_the_docs_runs(capsys) -> None:
    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    block = text.split("<!-- tested: tests/test_attach.py runs this block -->\n```python\n")[1].split("```")[0]
    exec(compile(block, "docs/api.md", "exec"), {})
    assert capsys.readouterr().out.startswith("3 panels;")
