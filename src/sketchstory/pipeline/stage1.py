"""Stage 1: panel prompts -> K line-sketch candidates each, from a diffusers text-to-image model.

The model is asked for a clean line drawing (a configurable template around the panel prompt and a
negative prompt); :func:`sketchstory.lineart.extract_lines` then turns the picture into black
strokes on white at the story's size. Each candidate has its own seed, derived from the panel's
seed, and is generated alone, so the seed in its PNG metadata reproduces it whatever K was.

Models: SDXL (the thesis), SD1.5, the bundled demo model (its UNet learnt sketches under the
caption prefix ``a line sketch of``) and random tiny models; or any hub id, diffusers folder or
single checkpoint, whose class (SD1.5 or SDXL) is read from the source. A loaded model is released
(:class:`Stage1Model`) before stage 2 loads its own, so the two never share memory.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image
from tqdm.auto import tqdm

from sketchstory.demo.world import SKETCH_PREFIX
from sketchstory.lineart import DEFAULT_METHOD, Method, extract_lines
from sketchstory.models import (
    DEMO_DIR,
    ModelLoadError,
    explain_load_error,
    hub_offline,
    default_device,
    fetch,
)
from sketchstory.models import REGISTRY as STAGE2_REGISTRY
from sketchstory.provenance import save_png, versions
from sketchstory.sketches import SketchError, normalize_sketch
from sketchstory.story import Story

Kind = Literal["sd15", "sdxl"]
Pipeline = StableDiffusionPipeline | StableDiffusionXLPipeline

LINEART_TEMPLATE = ("{prompt}, clean black and white line art, black ink outlines on white paper, "
                    "coloring book page, simple shapes, no shading")
LINEART_NEGATIVE = ("color, colour, shading, gradient, grey tones, photo, realistic, 3d render, texture, "
                    "hatching, text, watermark, signature, blurry, noisy")
_NATIVE: dict[Kind, int] = {"sd15": 512, "sdxl": 1024}
# What a text-to-image repo needs: configs, tokenizers and the full-precision weights of the
# pipeline's parts; not the safety checker, fp16 variants or the root single-file checkpoints,
# which would multiply the download (SDXL's repo holds about 10 times what is needed).
PIPELINE_FILES = ["model_index.json", "scheduler/*", "tokenizer*/*", "text_encoder*/config.json",
                  "text_encoder*/model.safetensors", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                  "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]


@dataclass(frozen=True)
class SketchModelSpec:
    name: str
    source: str  # hub id, local diffusers folder, single checkpoint, or "tiny"
    kind: Kind | None  # None: read from the source when loading
    description: str
    native_size: int | None = None  # None: the kind's (512 for SD1.5, 1024 for SDXL)
    steps: int = 30
    guidance: float = 7.5
    template: str = LINEART_TEMPLATE
    negative: str = LINEART_NEGATIVE


REGISTRY: dict[str, SketchModelSpec] = {
    spec.name: spec
    for spec in (
        SketchModelSpec("sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl",
                        "Stable Diffusion XL base 1.0, the thesis's stage-1 model", guidance=7.0),
        SketchModelSpec("sd15", STAGE2_REGISTRY["sd15"].base, "sd15", "Stable Diffusion 1.5 (smaller, faster than SDXL)"),
        # The demo UNet was trained on sketches captioned SKETCH_PREFIX + caption, with "" dropped in
        # for classifier-free guidance: that is its line-art template, and "" its negative prompt.
        SketchModelSpec("demo", str(DEMO_DIR), "sd15", "the bundled toy-world model's own sketch mode",
                        native_size=64, steps=20, guidance=4.0, template=SKETCH_PREFIX + "{prompt}", negative=""),
        SketchModelSpec("tiny", "tiny", "sd15", "random tiny SD1.5-class model, to smoke-test an install",
                        native_size=32, steps=2, guidance=5.0),
    )
}


def resolve_model(model: str) -> SketchModelSpec:
    """A registry name, or any source (hub id, folder, file) as an ad-hoc spec of unknown kind."""
    return REGISTRY.get(model) or SketchModelSpec(model, model, None, f"user model {model}")


def default_model(stage2_model: str) -> str:
    """Stage 1 follows the bundled models (demo, tiny); for real models it is SDXL, as in the thesis."""
    return stage2_model if stage2_model in ("demo", "tiny") else "sdxl"


# --- loading ------------------------------------------------------------------------------------


def detect_kind(path: Path) -> Kind:
    """Whether a local diffusers folder or checkpoint holds an SDXL or an SD1.5-class pipeline."""
    if path.is_file():
        if path.suffix != ".safetensors":
            return "sdxl" if "xl" in path.name.lower() else "sd15"
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                # SDXL checkpoints carry a second text encoder under this prefix.
                keys = f.keys()  # safe_open is not a dict: keys() lists the tensor names
                return "sdxl" if any(k.startswith("conditioner.embedders.1") for k in keys) else "sd15"
        except (OSError, ValueError, RuntimeError) as err:
            raise explain_load_error(str(path), "stage-1 model", err) from None
    try:
        config = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as err:
        raise explain_load_error(str(path), "stage-1 model", err) from None
    return "sdxl" if "XL" in str(config.get("_class_name", "")) else "sd15"


def load_pipeline(spec: SketchModelSpec, device: str | None = None) -> Pipeline:
    """Load a stage-1 text-to-image pipeline onto the device; raise ``ModelLoadError`` on failure."""
    dev, dtype = default_device(device)
    if spec.source == "tiny":
        pipe: Pipeline = _tiny_pipeline(dev, dtype)
    else:
        if spec.source == str(DEMO_DIR) and not (DEMO_DIR / "unet").is_dir():
            raise ModelLoadError(f"the demo model's weights are missing from {DEMO_DIR}: reinstall sketchstory, "
                                 "or train them with `python -m sketchstory.demo.train`")
        path = Path(fetch(spec.source, "stage-1 model", PIPELINE_FILES))
        kind = spec.kind or detect_kind(path)
        kw: dict = {"torch_dtype": dtype, "local_files_only": hub_offline()}
        if kind == "sd15":
            cls: type[Pipeline] = StableDiffusionPipeline
            # The safety checker is a second large model, and it blacks out pictures it misjudges.
            kw |= {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        else:
            cls = StableDiffusionXLPipeline
            kw["add_watermarker"] = False  # an invisible watermark is noise to line extraction
        try:
            pipe = cls.from_single_file(str(path), **kw) if path.is_file() else cls.from_pretrained(str(path), **kw)
        except (OSError, ValueError) as err:
            raise explain_load_error(str(path), "stage-1 model", err) from None
        pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_pipeline(device: torch.device, dtype: torch.dtype) -> StableDiffusionPipeline:
    from sketchstory.tiny import tiny_components

    c = tiny_components(device, dtype, with_controlnet=False)
    return StableDiffusionPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet,
        scheduler=DDIMScheduler.from_config(c.scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )


def release() -> None:
    """Return freed model memory to the system (and CUDA's cache to the driver)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    # glibc keeps freed heap pages for reuse (about 1.5 GB after an SD1.5 load on CPU): the next
    # model could reuse them, but a long-lived process (the web UI) would hold them for nothing.
    if sys.platform == "linux":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl)
            pass


class Stage1Model:
    """A loaded stage-1 pipeline that lets go of its weights on ``release`` / leaving ``with``."""

    def __init__(self, spec: SketchModelSpec, device: str | None = None) -> None:
        self.spec = spec
        self._pipe: Pipeline | None = load_pipeline(spec, device)

    @property
    def pipe(self) -> Pipeline:
        if self._pipe is None:
            raise RuntimeError(f"the stage-1 model {self.spec.name} was released; load it again")
        return self._pipe

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        self._pipe = None
        release()


# --- generation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SketchOptions:
    candidates: int = 4
    steps: int | None = None  # None: the spec's
    guidance: float | None = None
    template: str | None = None  # must contain "{prompt}"
    negative: str | None = None
    size: tuple[int, int] | None = None  # generation (width, height); None: native area, story's aspect
    method: Method = DEFAULT_METHOD
    keep_pictures: bool = False  # also save the raw generated picture beside each candidate
    progress: bool = True
    device: str | None = None

    def __post_init__(self) -> None:
        if self.candidates < 1:
            raise ValueError(f"candidates {self.candidates}: ask for at least one candidate per panel")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps {self.steps}: give at least one denoising step")
        if self.template is not None and "{prompt}" not in self.template:
            raise ValueError(f"the prompt template {self.template!r} has no {{prompt}} placeholder for the panel's prompt")
        if self.size is not None and any(side < 8 or side % 8 for side in self.size):
            raise ValueError(f"generation size {self.size}: width and height must be multiples of 8")


@dataclass(frozen=True)
class Candidate:
    panel: int
    index: int
    seed: int
    path: Path
    blank: bool  # line extraction found no strokes; saved as an empty page, never chosen by default


def candidate_seed(panel_seed: int, k: int) -> int:
    """Seed of candidate ``k``: hashed, since panel_seed + k would repeat a neighbouring panel's seeds."""
    digest = hashlib.sha256(f"sketchstory/stage1/{panel_seed}/{k}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**63


def sketch_prompt(story: Story, index: int, template: str) -> str:
    """The panel's prompt and its characters' descriptions in the template.

    The story's ``style`` is left out: it describes stage 2's rendering (colour, medium), which
    would fight the line-art template.
    """
    parts = [story.panels[index].prompt.strip()]
    parts += [c.description.strip() for c in story.panel_characters(index) if c.description.strip()]
    return template.replace("{prompt}", ", ".join(parts))


def generation_size(native: int, width: int, height: int, multiple: int) -> tuple[int, int]:
    """About native x native pixels (what the model was trained at) in the story's aspect ratio."""
    scale = native / math.sqrt(width * height)
    return (max(multiple, round(width * scale / multiple) * multiple),
            max(multiple, round(height * scale / multiple) * multiple))


def candidate_folder(out: Path, index: int) -> Path:
    """``out/panel_NN``, or ``panel_NN-2``, ``-3``... if it holds files.

    Earlier candidates are never overwritten: a panel (maybe another one, after a reorder) may
    use one of them or an edit of it, and choosing by number looks beside the panel's sketch.
    """
    folder, n = out / f"panel_{index:02d}", 1
    while folder.exists() and any(folder.iterdir()):
        n += 1
        folder = out / f"panel_{index:02d}-{n}"
    return folder


def default_choice(candidates: Sequence[Candidate]) -> Candidate | None:
    """The first candidate with lines, if any."""
    return next((c for c in candidates if not c.blank), None)


def generate_candidates(
    pipe: Pipeline, spec: SketchModelSpec, story: Story, folders: dict[int, Path], options: SketchOptions,
    on_panel: Callable[[int, list[Candidate]], None] | None = None,
) -> dict[int, list[Candidate]]:
    """Write ``options.candidates`` sketches for each panel in ``folders`` into its folder."""
    template = options.template if options.template is not None else spec.template
    negative = options.negative if options.negative is not None else spec.negative
    steps = options.steps or spec.steps
    guidance = options.guidance if options.guidance is not None else spec.guidance
    out_size = (story.settings.width, story.settings.height)
    # Pipelines want sides divisible by 8, UNets latents divisible by their total downsampling.
    multiple = math.lcm(8, pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1))
    native = spec.native_size or _NATIVE["sdxl" if isinstance(pipe, StableDiffusionXLPipeline) else "sd15"]
    gen_w, gen_h = options.size or generation_size(native, *out_size, multiple)
    bar = tqdm(total=len(folders) * options.candidates * steps, unit="step", disable=not options.progress,
               desc="stage 1")

    def step(_pipe: Pipeline, _i: int, _t: torch.Tensor, kwargs: dict) -> dict:
        bar.update(1)
        return kwargs

    results: dict[int, list[Candidate]] = {}
    try:
        for n, folder in folders.items():
            prompt = sketch_prompt(story, n, template)
            results[n] = []
            for k in range(options.candidates):
                bar.set_postfix_str(f"panel {n} candidate {k}")
                seed = candidate_seed(story.panel_seed(n), k)
                # A CPU generator draws the same starting noise on every device.
                picture = pipe(prompt=prompt, negative_prompt=negative or None, width=gen_w, height=gen_h,
                               num_inference_steps=steps, guidance_scale=guidance,
                               generator=torch.Generator("cpu").manual_seed(seed),
                               callback_on_step_end=step).images[0]
                sketch, blank = _to_sketch(picture, out_size, options.method)
                meta = {"stage": 1, "panel": n, "candidate": k, "seed": seed, "panel_seed": story.panel_seed(n),
                        "prompt": prompt, "negative_prompt": negative, "model": spec.name, "source": spec.source,
                        "pipeline": type(pipe).__name__, "steps": steps, "guidance_scale": guidance,
                        "generated_size": [gen_w, gen_h], "size": list(out_size), "line_method": options.method,
                        "blank": blank, "versions": versions()}
                path = save_png(sketch, folder / f"cand_{k:02d}.png", meta)
                if options.keep_pictures:
                    save_png(picture, folder / f"picture_{k:02d}.png", meta)
                results[n].append(Candidate(n, k, seed, path, blank))
                # Some schedulers take more or fewer calls than steps: keep the bar exact per candidate.
                bar.n = sum(map(len, results.values())) * steps
                bar.refresh()
            if on_panel is not None:
                on_panel(n, results[n])
    finally:
        bar.close()
    return results


def sketch_story(
    story: Story, folders: dict[int, Path], model: str, options: SketchOptions,
    on_panel: Callable[[int, list[Candidate]], None] | None = None,
) -> dict[int, list[Candidate]]:
    """Load the stage-1 model, generate every panel's candidates, and release the model."""
    spec = resolve_model(model)
    with Stage1Model(spec, options.device) as loaded:
        return generate_candidates(loaded.pipe, spec, story, folders, options, on_panel)


def _to_sketch(picture: Image.Image, size: tuple[int, int], method: Method) -> tuple[Image.Image, bool]:
    try:
        return normalize_sketch(extract_lines(picture, method), size), False
    except SketchError:
        return Image.new("L", size, 255), True
