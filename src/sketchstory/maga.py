"""MAGA on a stock diffusers pipeline, without sketchstory's runner (docs/api.md)::

    with maga.attach(pipe, memory="anchors:0+window:2") as story:
        for prompt, canny in panels:
            pipe(prompt, image=canny, generator=torch.Generator().manual_seed(seed))

One pipeline call renders the next panel(s) of the story (a call that renders k images renders k
panels, in batch order), and each panel attends to the memory of the earlier ones exactly as
``sketchstory generate`` does: the same processors, memory bank and arithmetic
(:mod:`sketchstory.attention.maga`), fed by a forward pre-hook on the UNet that counts the
denoising steps and reads the classifier-free-guidance layout from the pipeline. On exit the
pipeline's class, the UNet's hooks and every attention processor are put back as they were.

Works with ``StableDiffusionPipeline``, ``StableDiffusionControlNetPipeline``,
``StableDiffusionXLPipeline``, ``StableDiffusionXLControlNetPipeline`` and any pipeline of theirs
that calls ``self.unet`` once per scheduler step with ``[uncond..., cond...]`` batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from pydantic import ValidationError

from sketchstory.attention.layers import first_maga_layer, self_attention_layers
from sketchstory.attention.maga import MAGAConfig, MAGARun, MAGAState, install
from sketchstory.attention.memory import MemoryBank
from sketchstory.attention.policy import MemoryPolicy, parse_policy
from sketchstory.story import MagaSettings

__all__ = ["StoryMemory", "attach"]


class Pipeline(Protocol):
    """What ``attach`` needs of a diffusers pipeline (every Stable Diffusion pipeline has it)."""

    unet: torch.nn.Module
    scheduler: Any

    @property
    def do_classifier_free_guidance(self) -> bool: ...


@dataclass
class StoryMemory:
    """The story an attached pipeline is rendering: which panel comes next, and MAGA's memory.

    ``auto`` (the default): every pipeline call renders new panels. ``auto=False``: a call
    re-renders the current panel(s), replacing their memory, until :meth:`next_panel` keeps them,
    so a user can try seeds for one panel without the rejected tries becoming memory.
    """

    run: MAGARun
    auto: bool = True
    panel: int = 0  # story index of the next panel a call renders
    calls: int = 0  # finished pipeline calls
    _batch: int = 0  # panels the last call rendered
    _step: int = 0  # UNet calls so far in the current pipeline call
    _prompts: list[str] | None = field(default=None, repr=False)

    @property
    def memory(self) -> MemoryBank:
        return self.run.memory

    @property
    def policy(self) -> MemoryPolicy:
        return self.run.config.policy

    def next_panel(self) -> None:
        """Keep the last call's panels and move on (automatic unless ``auto=False``; harmless then)."""
        if self.auto or not self._batch:
            return
        self._advance()

    def _advance(self) -> None:
        self.panel += self._batch
        self._batch = 0
        # Entries of panels that no later panel reads are dropped (q = self.panel reads the most).
        self.memory.drop(self.memory.panels() - set(self.policy.sources(self.panel)))

    def _panels(self) -> tuple[int, ...]:
        return tuple(range(self.panel, self.panel + self._batch))


class _Hooks:
    """The per-call bookkeeping: a ``__call__`` wrapper (panel boundaries) and a UNet pre-hook (steps)."""

    def __init__(self, pipe: Pipeline, story: StoryMemory, config: MAGAConfig, settings: MagaSettings) -> None:
        self.pipe, self.story, self.config, self.settings = pipe, story, config, settings

    def begin(self, args: tuple, kwargs: dict) -> None:
        story = self.story
        story._step, story._batch = 0, 0
        prompt = kwargs.get("prompt", args[0] if args else None)
        story._prompts = [prompt] if isinstance(prompt, str) else list(prompt) if prompt is not None else None

    def end(self, failed: bool) -> None:
        story = self.story
        if failed:  # a half-denoised panel is no memory
            story.memory.drop(set(story._panels()))
            story._batch = 0
            return
        story.calls += 1
        if story.auto:
            story._advance()

    def before_unet(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        story, pipe = self.story, self.pipe
        sample = args[0] if args else kwargs["sample"]
        branches = 2 if pipe.do_classifier_free_guidance else 1
        if sample.shape[0] % branches:
            raise ValueError(f"sketchstory.maga: a UNet batch of {sample.shape[0]} is not {branches} guidance "
                             "branches of equal size; attach supports pipelines that batch [uncond, cond]")
        if story._step == 0:
            story._batch = sample.shape[0] // branches
            steps = int(pipe.scheduler.num_inference_steps)
            story.run.config = replace(self.config, start_step=self.settings.resolved_start_step(steps))
            if self.config.strength:
                self._conditions(kwargs, branches)
        panels = story._panels()
        story.run.state = MAGAState(
            step=story._step, panels=panels, branches=branches, latent_hw=tuple(sample.shape[-2:]),
            # A panel's memory is needed later iff the next panel reads it (policies read backwards).
            write=frozenset(n for n in panels if n in story.policy.sources(n + 1)),
        )
        story._step += 1

    def _conditions(self, kwargs: dict, branches: int) -> None:
        """Each panel's pooled prompt embedding, for the condition bias (``strength`` > 0)."""
        story, pipe = self.story, self.pipe
        added = kwargs.get("added_cond_kwargs") or {}
        if "text_embeds" in added:  # SDXL: the pooled embedding of its second text encoder
            pooled = added["text_embeds"].unflatten(0, (branches, story._batch))[-1]
        else:
            if story._prompts is None:
                raise ValueError("sketchstory.maga: strength > 0 needs the prompt as text (not prompt_embeds)")
            tok, enc = pipe.tokenizer, pipe.text_encoder  # type: ignore[attr-defined]
            ids = tok(story._prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids
            with torch.no_grad():
                pooled = enc(ids.to(enc.device)).pooler_output
            pooled = pooled.repeat_interleave(story._batch // len(story._prompts), dim=0)
        for n, c in zip(story._panels(), pooled, strict=True):
            story.run.conditions[n] = c


def maga_settings(**knobs: Any) -> MagaSettings:
    """The knobs checked as a story's are; a bad one is a ``ValueError`` that says what to give."""
    try:
        return MagaSettings(**knobs)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ValueError(f"sketchstory.maga.attach: {problems}") from None


@contextmanager
def attach(
    pipe: Pipeline,
    *,
    memory: str = "anchors:0+window:2",
    start_layer: int = 8,
    start_step: int | str = "24/50",
    strength: float = 0.0,
    tau: float = 0.1,
    gain: float = 0.0,
    memory_guidance: float = 0.0,
    token_budget: int | None = None,
    auto: bool = True,
    memory_device: torch.device | str | None = None,
) -> Iterator[StoryMemory]:
    """Render a story with ``pipe``: each call inside the ``with`` block is the next panel.

    The knobs are the story settings' ``maga`` ones (README, docs/maga.md): ``memory`` a policy such
    as ``"anchors:0+window:2"``; ``start_layer`` counted in SD1.5's 16 self-attention layers and
    mapped proportionally onto this UNet's (SDXL: docs/api.md); ``start_step`` an int or ``"a/b"``,
    scaled to each call's ``num_inference_steps``. ``memory_device="cpu"`` keeps the memory off the GPU.
    """
    settings = maga_settings(memory=memory, start_layer=start_layer, start_step=start_step, strength=strength,
                             tau=tau, gain=gain, memory_guidance=memory_guidance,
                             token_budget=token_budget)
    cls = type(pipe)
    if getattr(cls, "_sketchstory_story", None) is not None:
        raise ValueError("sketchstory.maga.attach: this pipeline is already attached to a story; leave that "
                         "'with' block first")
    unet = pipe.unet
    layers = len(self_attention_layers(list(unet.attn_processors)))
    config = MAGAConfig(
        policy=parse_policy(settings.memory), first_layer=first_maga_layer(settings.start_layer, layers),
        start_step=0, strength=settings.strength, tau=settings.tau, gain=settings.gain,
        memory_guidance=settings.memory_guidance, token_budget=settings.token_budget,
    )
    story = StoryMemory(MAGARun(config, MemoryBank(memory_device)), auto=auto)
    hooks = _Hooks(pipe, story, config, settings)

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        hooks.begin(args, kwargs)
        try:
            out = cls.__call__(self, *args, **kwargs)
        except BaseException:
            hooks.end(failed=True)
            raise
        hooks.end(failed=False)
        return out

    previous = install(unet, story.run)
    handle = unet.register_forward_pre_hook(hooks.before_unet, with_kwargs=True)
    # ``pipe(...)`` looks ``__call__`` up on the class: a subclass for the block's duration.
    pipe.__class__ = type(cls.__name__, (cls,), {"__call__": __call__, "_sketchstory_story": story,
                                                 "__module__": cls.__module__})
    try:
        yield story
    finally:
        pipe.__class__ = cls
        handle.remove()
        unet.set_attn_processor(previous)  # type: ignore[operator]
