"""The stage-2 settings form: one declarative field per setting, with its explanation.

The page builds its inputs from :data:`FIELDS` and hands their values back in the same order;
:func:`apply_settings` validates them as part of the whole story, so a problem is reported with
its location (``settings.width: ...``) and the working story keeps its last valid settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sketchstory.models.specs import REGISTRY, native_settings
from sketchstory.pipeline.model_settings import still_native
from sketchstory.story import Settings, Story, StoryError

# "seed": a whole number kept as text, since a browser's number field rounds beyond 2**53.
Kind = Literal["int", "float", "text", "choice", "bool", "slider", "seed"]
Group = Literal["sampling", "maga", "advanced"]


@dataclass(frozen=True)
class Field:
    key: str  # a Settings field, "maga.<field>" for MAGA's
    label: str
    info: str
    kind: Kind
    group: Group
    choices: tuple[tuple[str, str], ...] = ()  # (label, value)
    custom: bool = False  # a choice that also takes a typed-in value
    minimum: float | None = None  # sliders' range
    maximum: float | None = None
    step: float | None = None


MEMORY_POLICIES = ("anchors:0+window:2", "all", "window:2", "window:4", "anchors:0", "decay:0.7", "none")

FIELDS: tuple[Field, ...] = (
    Field("model", "Model", "demo: the bundled toy model (offline, CPU). sd15 / anime: Stable Diffusion 1.5 "
          "(their weights must be on this computer). tiny: random weights, only to test an install. "
          "Or type a hub id, a diffusers folder or a .safetensors file.", "choice", "sampling",
          choices=tuple((name, name) for name in REGISTRY), custom=True),
    Field("controlnet", "ControlNet", "The Canny ControlNet: empty uses the model's own; or a hub id, a folder "
          "or a file.", "text", "sampling"),
    Field("width", "Width", "Pixels, a multiple of 8 (demo model: 64, SD1.5: 512).", "int", "sampling", step=8),
    Field("height", "Height", "Pixels, a multiple of 8.", "int", "sampling", step=8),
    Field("steps", "Steps", "Denoising steps: more is finer and slower.", "slider", "sampling",
          minimum=1, maximum=100, step=1),
    Field("guidance_scale", "Guidance", "How closely the picture follows the prompt (classifier-free guidance).",
          "slider", "sampling", minimum=0, maximum=20, step=0.5),
    Field("controlnet_scale", "Sketch strength", "How closely the picture follows the sketch's edges "
          "(ControlNet scale); 0 ignores the sketches.", "slider", "sampling", minimum=0, maximum=2, step=0.05),
    Field("seed", "Story seed", "Panels without their own seed derive one from it and their position.", "seed",
          "sampling"),
    Field("scheduler", "Sampler", "The denoising scheduler; DDIM is what the thesis used.", "choice", "sampling",
          choices=tuple((s, s) for s in ("ddim", "dpmpp-2m", "euler", "unipc"))),
    Field("maga.enabled", "Consistency memory (MAGA)", "Each panel also attends to how earlier panels were "
          "denoised, so characters, clothes and places stay the same. Off: independent panels.", "bool", "maga"),
    Field("maga.memory", "Memory policy", "Which earlier panels a panel reads: all (the thesis; cost grows with "
          "the story), window:k (the last k), anchors:i,j (fixed panels, 0-based), decay:g (older ones fade), "
          "none; join with +. The default keeps the cost per panel constant.", "choice", "maga",
          choices=tuple((p, p) for p in MEMORY_POLICIES), custom=True),
    Field("maga.start_layer", "Start layer", "First self-attention layer that shares, on a scale of 16 (SD1.5's "
          "layers; other models' are mapped onto it). Thesis: 8, the decoder. Lower shares more, layout "
          "included.", "slider", "maga", minimum=0, maximum=16, step=1),
    Field("maga.start_step", "Start step", "First denoising step that shares: a step number, or a/b of the "
          "steps (thesis: 24/50). Earlier shares more and leaves less variety.", "text", "maga"),
    Field("maga.strength", "Prompt-aware weighting", "λ: panels with more similar prompts share more. "
          "0: every panel in memory weighs the same.", "slider", "maga", minimum=0, maximum=10, step=0.5),
    Field("maga.gain", "Memory gain", "More (> 0) or less (< 0) sharing with the earlier panels as a whole: "
          "their weight is multiplied by e^gain.", "slider", "maga", minimum=-5, maximum=5, step=0.5),
    Field("maga.memory_guidance", "Memory guidance", "How much classifier-free guidance amplifies the memory, "
          "as it does the prompt: the share of the unconditional branch that reads no memory (0: the thesis, "
          "both branches read it).", "slider", "maga", minimum=0, maximum=1, step=0.25),
    Field("maga.subject_mask", "Share only the subject", "Share only the sketched subject's tokens, so "
          "backgrounds do not bleed from panel to panel.", "bool", "maga"),
    Field("maga.background", "Backgrounds", "Stories that place characters or name panels' settings (story "
          "format 2): a panel's background shares memory with earlier panels of the same setting, or with none.",
          "choice", "maga", choices=(("same setting", "setting"), ("none", "none"))),
    Field("mode", "Execution", "auto: batched in chunks that fit the free memory, else sequential (the default, "
          "fastest). sequential: panel after panel (the thesis). batched: panels denoised together with a causal "
          "mask. All give the same pictures.", "choice", "advanced",
          choices=(("auto", "auto"), ("sequential", "sequential"), ("batched", "batched"))),
    Field("chunk_size", "Batch size", "Panels per batch: batched, 0 = all at once; auto, the most (0: its own "
          "limit).", "int", "advanced"),
    Field("maga.token_budget", "Token budget", "Tokens each memory panel shares per layer (0: all); "
          "bounds the cost at high resolution.", "int", "advanced"),
    Field("maga.tau", "Weighting temperature", "τ of the prompt-aware weighting: lower is sharper.", "float",
          "advanced", step=0.01),
    Field("canny_low", "Canny low", "Edge thresholds applied to the sketch (100 and 200 match the ControlNet).",
          "int", "advanced"),
    Field("canny_high", "Canny high", "Upper edge threshold.", "int", "advanced"),
)

# Settings whose "none" the form shows as an empty text or a zero.
_EMPTY_IS_NONE = {"controlnet", "maga.token_budget"}


def switched_model(old: Settings, new: Settings) -> dict[str, Any]:
    """When the form switches model: the new model's native values for the settings left at the old one's."""
    if old.model == new.model:
        return {}
    return still_native(new, native_settings(old.model), native_settings(new.model))


def values_of(settings: Settings) -> list[Any]:
    """The form's values for ``settings``, in :data:`FIELDS` order."""
    out = []
    for field in FIELDS:
        value = settings.value(field.key)
        if field.key in _EMPTY_IS_NONE and value is None:
            value = 0 if field.kind == "int" else ""
        out.append(str(value) if field.key == "maga.start_step" or field.kind == "seed" else value)
    return out


def _convert(field: Field, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
    if field.key in _EMPTY_IS_NONE and value in (None, "", 0):
        return None
    if field.kind == "seed":
        text = "" if value is None else str(value)  # already stripped above when typed
        if not text.isdigit():
            raise StoryError([f"settings.{field.key}: {value!r} is not a seed; type a whole number from 0 "
                              f"({field.label})"])
        return int(text)
    if field.kind in ("int", "float", "slider"):
        if value is None or value == "":
            raise StoryError([f"settings.{field.key}: give a number ({field.label})"])
        number = float(value)
        return int(number) if field.kind == "int" or number.is_integer() and field.step == 1 else number
    if field.kind == "bool":
        return bool(value)
    return str(value)


def apply_settings(story: Story, values: Sequence[Any]) -> Story:
    """The story with the form's settings; ``StoryError`` lists every problem with its location."""
    if len(values) != len(FIELDS):
        raise ValueError(f"expected {len(FIELDS)} settings values, got {len(values)}")
    changes, problems = {}, []
    for field, value in zip(FIELDS, values, strict=True):
        try:
            changes[field.key] = _convert(field, value)
        except StoryError as e:
            problems += e.problems
        except ValueError:
            problems.append(f"settings.{field.key}: {value!r} is not a number ({field.label})")
    if problems:
        raise StoryError(problems)
    return story.with_settings(changes)
