"""Stage 1: panel prompts -> K line-sketch candidates each, from a diffusers text-to-image model.

The model is asked for a clean line drawing (a configurable template around the panel prompt and a
negative prompt); :func:`sketchstory.lineart.extract_lines` then turns the picture into black
strokes on white at the story's size. Each candidate has its own seed, derived from the panel's
seed, and is generated alone, so the seed in its PNG metadata reproduces it whatever K was.

Models (:mod:`sketchstory.models.specs`): SDXL (the thesis), SD1.5, the bundled demo model and
random tiny models; or any hub id, diffusers folder or single checkpoint. The model is loaded for
the run and released after it (:class:`~sketchstory.models.pipelines.Stage1Model`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image
from tqdm.auto import tqdm

from sketchstory.lineart import DEFAULT_METHOD, Method, extract_lines
from sketchstory.models import Kind, SketchModelSpec, resolve_sketch_model
from sketchstory.models.pipelines import Pipeline, Stage1Model
from sketchstory.provenance import save_png, versions
from sketchstory.sketches import SketchError, normalize_sketch
from sketchstory.story import Story

_NATIVE: dict[Kind, int] = {"sd15": 512, "sdxl": 1024}
MAX_CANDIDATES = 64  # per panel: each is a full text-to-image run


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
        checks = [  # (what is wrong, what to do), every problem reported at once
            (not 1 <= self.candidates <= MAX_CANDIDATES,
             f"candidates {self.candidates}: ask for 1 to {MAX_CANDIDATES} candidates per panel"),
            (self.steps is not None and not 1 <= self.steps <= 1000,
             f"steps {self.steps}: give 1 to 1000 denoising steps"),
            (self.template is not None and "{prompt}" not in self.template,
             f"the prompt template {self.template!r} has no {{prompt}} placeholder for the panel's prompt"),
            (self.size is not None and any(side < 8 or side % 8 for side in self.size),
             f"generation size {self.size}: width and height must be multiples of 8"),
            (self.size is not None and any(side > 4096 for side in self.size),
             f"generation size {self.size}: width and height must be at most 4096"),
        ]
        if problems := [message for wrong, message in checks if wrong]:
            raise ValueError("; ".join(problems))


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
    spec = resolve_sketch_model(model)
    with Stage1Model(spec, options.device) as loaded:
        return generate_candidates(loaded.pipe, spec, story, folders, options, on_panel)


def _to_sketch(picture: Image.Image, size: tuple[int, int], method: Method) -> tuple[Image.Image, bool]:
    try:
        return normalize_sketch(extract_lines(picture, method), size), False
    except SketchError:
        return Image.new("L", size, 255), True
