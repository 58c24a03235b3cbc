"""The named models of both stages, and how a name or a source becomes a spec. No torch.

Stage 2 runs an SD1.5- or SDXL-family base with its Canny ControlNet (:class:`ModelSpec`); stage 1
asks a text-to-image model, SD1.5 or SDXL, for line art (:class:`SketchModelSpec`). Any hub id, local
diffusers folder or single checkpoint stands for an ad-hoc spec of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

DEMO_DIR = Path(__file__).parent.parent / "demo" / "weights"
# The caption prefix under which the demo UNet learned sketches (sketchstory.demo.world captions its
# training sketches with it); stage 1's demo template.
SKETCH_PREFIX = "a line sketch of "

Kind = Literal["sd15", "sdxl"]

LINEART_TEMPLATE = ("{prompt}, clean black and white line art, black ink outlines on white paper, "
                    "coloring book page, simple shapes, no shading")
LINEART_NEGATIVE = ("color, colour, shading, gradient, grey tones, photo, realistic, 3d render, texture, "
                    "hatching, text, watermark, signature, blurry, noisy")


# Each family's Canny ControlNet: what a base model of unknown family gets once its family is read.
CANNY: dict[Kind, str] = {"sd15": "lllyasviel/control_v11p_sd15_canny", "sdxl": "diffusers/controlnet-canny-sdxl-1.0"}


@dataclass(frozen=True)
class ModelSpec:
    """A stage-2 model: its base and Canny ControlNet."""

    name: str
    base: str  # registry-free source: hub id, local folder, or single-file checkpoint
    controlnet: str | None  # None: the Canny ControlNet of the base's family (CANNY), once it is read
    description: str
    native_size: int = 512
    kind: Kind | None = "sd15"  # None: read from the base when loading
    steps: int = 30  # what a story that does not say gets
    guidance: float = 7.5
    # MAGA settings over the thesis's (MagaSettings' defaults) for a story that does not say: where a
    # model decides appearance is the model's own, so the start is chosen per model by a study.
    maga: Mapping[str, Any] = field(default_factory=dict)
    # Over ``maga`` for a story that places its characters (routed MAGA): there backgrounds read only
    # earlier backgrounds of their own setting, so a model can share more without tinting them.
    maga_routed: Mapping[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", CANNY["sd15"],
                  "Stable Diffusion 1.5 with the v1.1 Canny ControlNet"),
        ModelSpec("sdxl", "stabilityai/stable-diffusion-xl-base-1.0", CANNY["sdxl"],
                  "Stable Diffusion XL base 1.0 with the SDXL Canny ControlNet", 1024, "sdxl"),
        # The thesis used SD1.5 fine-tuned on 2.6M Danbooru images; Anything V5 is the closest
        # widely mirrored public fine-tune of that kind.
        ModelSpec("anime", "stablediffusionapi/anything-v5", CANNY["sd15"],
                  "anime fine-tune of SD1.5 (closest public equivalent of the thesis's model)"),
        ModelSpec("demo", str(DEMO_DIR), str(DEMO_DIR / "controlnet"),
                  "sketchstory's bundled toy-world model, trained here; runs on CPU in seconds", 64,
                  steps=20, guidance=4.0,
                  # Chosen on held-out dev stories (seeds 2,000,000+, not the study's): it settles
                  # colours in its first steps, so MAGA starts at step 0 (from the thesis's 24/50 it
                  # catches a fifth of the effect); every panel reads the first (anchors:0: reading the
                  # later ones copies their misses too); guidance amplifies the memory (memory guidance 1:
                  # exact colours 0.43 -> 0.64 at the same background cost) with a memory gain of 1, and
                  # only the subject shares and reads, so backgrounds stay their own (+1.0 Delta E; gain 2:
                  # +2.2). Placed characters (routed): from layer 5 (the demo's up path), since its first
                  # layers match a part to the wrong part and carry nothing. Numbers:
                  # training/demo-match-12390/dev-set.md.
                  maga={"start_layer": 0, "start_step": 0, "memory": "anchors:0", "gain": 1.0, "memory_guidance": 1.0,
                        "subject_mask": True},
                  maga_routed={"start_layer": 5}),
        ModelSpec("tiny", "tiny", "tiny", "random tiny models of the real classes, to smoke-test an install", 32,
                  steps=2, guidance=5.0),
        ModelSpec("tiny-sdxl", "tiny-sdxl", "tiny-sdxl", "random tiny models of SDXL's classes, to smoke-test SDXL",
                  32, "sdxl", steps=2, guidance=5.0),
    )
}


@dataclass(frozen=True)
class SketchModelSpec:
    """A stage-1 model: a text-to-image source and how to ask it for line art."""

    name: str
    source: str  # hub id, local diffusers folder, single checkpoint, or "tiny"
    kind: Kind | None  # None: read from the source when loading
    description: str
    native_size: int | None = None  # None: the kind's (512 for SD1.5, 1024 for SDXL)
    steps: int = 30
    guidance: float = 7.5
    template: str = LINEART_TEMPLATE
    negative: str = LINEART_NEGATIVE


SKETCH_REGISTRY: dict[str, SketchModelSpec] = {
    spec.name: spec
    for spec in (
        SketchModelSpec("sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl",
                        "Stable Diffusion XL base 1.0, the thesis's stage-1 model", guidance=7.0),
        SketchModelSpec("sd15", REGISTRY["sd15"].base, "sd15", "Stable Diffusion 1.5 (smaller, faster than SDXL)"),
        # The demo UNet was trained on sketches captioned SKETCH_PREFIX + caption, with "" dropped in
        # for classifier-free guidance: that is its line-art template, and "" its negative prompt.
        SketchModelSpec("demo", str(DEMO_DIR), "sd15", "the bundled toy-world model's own sketch mode",
                        native_size=64, steps=20, guidance=4.0, template=SKETCH_PREFIX + "{prompt}", negative=""),
        SketchModelSpec("tiny", "tiny", "sd15", "random tiny SD1.5-class model, to smoke-test an install",
                        native_size=32, steps=2, guidance=5.0),
    )
}


def native_settings(model: str, routed: bool = False) -> dict[str, Any]:
    """The story settings a registry model was made for (``maga.<name>`` for MAGA's, as
    ``Story.with_settings`` takes them), with its routed ones for a story that places its characters;
    {} for a model the registry does not know."""
    spec = REGISTRY.get(model)
    if spec is None:
        return {}
    maga = {**spec.maga, **spec.maga_routed} if routed else spec.maga
    return {"width": spec.native_size, "height": spec.native_size, "steps": spec.steps,
            "guidance_scale": spec.guidance} | {f"maga.{k}": v for k, v in maga.items()}


def own_controlnet(source: str) -> str | None:
    """The ``controlnet/`` of a folder saved as a ControlNet pipeline (as ``sketchstory.demo.train``
    exports), so that the folder alone is a whole stage-2 model; None for anything else."""
    folder = Path(source) / "controlnet"
    return str(folder) if (folder / "config.json").is_file() else None


def resolve_spec(model: str, controlnet: str | None = None) -> ModelSpec:
    """A stage-2 registry name, or any source string made into an ad-hoc spec."""
    spec = REGISTRY.get(model) or ModelSpec(model, model, own_controlnet(model), f"user model {model}", kind=None)
    return replace(spec, controlnet=controlnet) if controlnet is not None else spec


def resolve_sketch_model(model: str) -> SketchModelSpec:
    """A stage-1 registry name, or any source (hub id, folder, file) as an ad-hoc spec of unknown kind."""
    return SKETCH_REGISTRY.get(model) or SketchModelSpec(model, model, None, f"user model {model}")


def default_sketch_model(stage2_model: str) -> str:
    """Stage 1 follows the bundled models (demo, tiny; tiny for tiny-sdxl); for real models it is SDXL, as in
    the thesis."""
    return {"demo": "demo", "tiny": "tiny", "tiny-sdxl": "tiny"}.get(stage2_model, "sdxl")
