"""A whole story through stage 2: execution modes, resume, incremental regeneration, outputs.

Output folder::

    panels/panel_00.png        each panel, PNG metadata: story, settings, seed, fingerprint
    conditions/panel_00_canny.png, conditions/panel_00_sketch.png
    memory/panel_00.safetensors   MAGA memory (only with keep_memory), for later incremental runs
    strip.png (strip_2.png ... for a long story: see layout.paginate)  story.json  run.json

Every file is written atomically the moment it is ready, so an interrupted run keeps every
finished panel. A panel's *fingerprint* hashes everything its pixels depend on: settings, model,
prompt, seed, sketch, and the fingerprints of the panels its MAGA memory reads. ``resume`` reuses
panels whose fingerprint still matches; ``only`` regenerates chosen panels. Either way the memory
those panels read is loaded from ``memory/`` when saved there, else recomputed (denoised, not
decoded) — so one bad panel never means regenerating the story.
"""

from __future__ import annotations

import functools
import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from sketchstory.atomic import atomic_write_text
from sketchstory.attention.budget import fit_token_budget, layer_shapes, panel_bytes, retained_panels
from sketchstory.attention.layers import first_maga_layer, self_attention_layers
from sketchstory.attention.maga import MAGAConfig, MAGARun, install
from sketchstory.attention.memory import MemoryBank
from sketchstory.attention.policy import MemoryPolicy, parse_policy
from sketchstory.attention.tracks import Tracks
from sketchstory.layout import compose_page, paginate
from sketchstory.models import Components, available_bytes, load, resolve_spec
from sketchstory.outputs import output_folder
from sketchstory.pipeline.chunking import ChunkPlan, activation_bytes, chunk_bytes, plan_chunk
from sketchstory.pipeline.conditions import (
    Mask,
    PanelInputs,
    Picture,
    Sketch,
    prepare_inputs,
    read_masks,
    read_references,
    read_sketches,
)
from sketchstory.pipeline.model_settings import follow_model
from sketchstory.pipeline.references import (
    Reference,
    record_reference,
    reference_fingerprint,
    reference_panel,
    reference_path,
)
from sketchstory.pipeline.regions import routed, story_routing
from sketchstory.pipeline.stage2 import (
    PanelJob,
    Sampling,
    control_tensor,
    decode,
    denoise,
    encode_negative,
    encode_text,
    prepared_scheduler,
)
from sketchstory.provenance import fingerprint, read_png_meta, save_png, versions
from sketchstory.story import Story
from sketchstory.tokenizer import long_prompts

log = logging.getLogger(__name__)
STRIP_MIN_SIDE = 256  # smaller panels are enlarged on the strip, to leave room for their captions
NO_MEMORY = MemoryPolicy()
CPU_SLOW_PIXELS = 768 * 768  # beyond this a CPU render of SD1.5 takes minutes per panel


@dataclass(frozen=True)
class RunOptions:
    resume: bool = False  # reuse finished panels whose inputs did not change
    only: frozenset[int] | None = None  # regenerate just these panels (incremental)
    keep_memory: bool = False  # save each panel's MAGA memory for later incremental runs
    device: str | None = None
    dtype: str | None = None  # auto (None), fp32, bf16, fp16: see models.device.default_device
    offload: bool = False  # CUDA: keep models in CPU memory until they run
    library: Path | None = None  # sketch library for ``library:ID`` sketches (default: see library.resolve)
    progress: bool = True  # a tqdm bar on stderr
    force: bool = False  # write into a folder that holds files sketchstory did not write (see sketchstory.outputs)
    # Called after every denoising step with (panels being denoised, steps done, steps in all).
    on_step: Callable[[tuple[int, ...], int, int], None] | None = None
    # Called with a panel's index once its image is written (a chunk reports each panel as it is decoded).
    on_panel: Callable[[int], None] | None = None


@dataclass
class RunReport:
    out: Path
    rendered: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)  # not rendered, kept from an earlier run
    missing: list[int] = field(default_factory=list)  # not rendered, and no earlier run's file (``only`` left them)
    recomputed: list[int] = field(default_factory=list)  # denoised only for the memory they feed
    # Characters whose reference picture's memory was recorded, or read from the cache.
    references: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    info: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # e.g. prompts truncated to the text encoder's length


def panel_path(out: Path, n: int) -> Path:
    return out / "panels" / f"panel_{n:02d}.png"


def strip_path(out: Path, page: int) -> Path:
    """The comic strip's ``page`` (from 0): ``strip.png``, then ``strip_2.png``, ``strip_3.png`` ..."""
    return out / ("strip.png" if page == 0 else f"strip_{page + 1}.png")


def strip_pages(out: Path) -> list[Path]:
    """The strip's pages in ``out``, in order, as far as they run without a gap."""
    pages: list[Path] = []
    while (path := strip_path(out, len(pages))).is_file():
        pages.append(path)
    return pages


def memory_path(out: Path, n: int) -> Path:
    return out / "memory" / f"panel_{n:02d}.safetensors"


def sampling_of(story: Story) -> Sampling:
    s = story.settings
    return Sampling(s.width, s.height, s.steps, s.guidance_scale, s.controlnet_scale, s.scheduler)


def memory_policy(story: Story) -> MemoryPolicy:
    m = story.settings.maga
    return parse_policy(m.memory) if m.enabled else NO_MEMORY


def maga_config(story: Story, num_layers: int) -> MAGAConfig:
    """The story's MAGA settings resolved for a UNet of ``num_layers`` self-attention layers and the run's steps."""
    m, s = story.settings.maga, story.settings
    return MAGAConfig(
        policy=memory_policy(story), first_layer=first_maga_layer(m.start_layer, num_layers),
        start_step=m.resolved_start_step(s.steps), strength=m.strength, tau=m.tau, gain=m.gain,
        memory_guidance=m.memory_guidance, token_budget=m.token_budget, subject_mask=m.subject_mask,
    )


def fingerprints(story: Story, inputs: list[PanelInputs], policy: MemoryPolicy | Tracks,
                 masks: dict[str, Mask] | None = None, references: dict[int, str] | None = None) -> list[str]:
    """Each panel's fingerprint; ``references``: those of the reference pictures' memory panels."""
    settings = story.settings.model_dump(mode="json", exclude={"mode", "chunk_size"})
    out: list[str] = []
    for n, p in enumerate(inputs):
        inputs_of = {
            "settings": settings, "prompt": p.prompt, "negative": story.negative_prompt, "seed": p.seed,
            "sketch": p.sketch_hash, "reads": [out[m] if m >= 0 else (references or {})[m] for m in policy.sources(n)],
        }
        if routed(story):  # where the characters are steers the attention (older runs' prints stay valid)
            inputs_of["setting"] = story.panels[n].setting
            inputs_of["cast"] = [[c.name, c.box, (masks or {})[c.mask][0] if c.mask else None]
                                 for c in story.placements(n)]
        out.append(fingerprint(inputs_of))
    return out


class StoryRun:
    """Plans and executes one ``generate`` call."""

    def __init__(self, story: Story, sketches: list[Sketch | None], out: Path, options: RunOptions,
                 components: Components | None = None, masks: dict[str, Mask] | None = None,
                 references: dict[str, Picture] | None = None) -> None:
        self.story, self.out, self.options = story, Path(out), options
        self.steps_done = 0
        self.components = components or load(resolve_spec(story.settings.model, story.settings.controlnet),
                                              options.device, offload=options.offload, dtype_name=options.dtype)
        self.sampling = sampling_of(story)
        self.inputs = prepare_inputs(story, sketches, self.components.vae_scale)
        num_layers = len(self_attention_layers(list(self.components.unet.attn_processors)))
        config = maga_config(story, num_layers)
        c, s = self.components, self.sampling
        # Routed (the story places characters): the policy applies along each character's panels, and a
        # character's reference picture is a memory panel first on its track.
        is_routed = routed(story)
        self.references = {reference_panel(i): Reference(ch.name, ch.description or ch.name, *references[ch.name])
                           for i, ch in enumerate(story.characters) if ch.name in (references or {})
                           } if is_routed else {}
        self.routing = story_routing(
            story, config.policy, self.inputs, masks or {}, (s.height // c.vae_scale, s.width // c.vae_scale), c.device,
            {r.character: m for m, r in self.references.items()}) if is_routed else None
        self.policy: MemoryPolicy | Tracks = self.routing.tracks if self.routing is not None else config.policy
        self.config = self._fit_memory_budget(config)
        maga = {"settings": story.settings.maga.model_dump(mode="json"), "first_layer": self.config.first_layer,
                "start_step": self.config.start_step, "token_budget": self.config.token_budget, "dtype": str(c.dtype)}
        canny = (story.settings.canny_low, story.settings.canny_high)
        self.reference_prints = {m: reference_fingerprint(r, story.negative_prompt, c.spec.name, s, canny, maga)
                                 for m, r in self.references.items()}
        self.prints = fingerprints(story, self.inputs, self.policy, masks, self.reference_prints)
        self.warnings = long_prompts(story, self.components.tokenizer) + self._size_warnings()
        for warning in self.warnings:
            log.warning(warning)

    def _size_warnings(self) -> list[str]:
        """Said before the work: a size that takes the CPU very long, or is far beyond the model's own."""
        s, c = self.story.settings, self.components
        native = c.unet.config.sample_size * c.vae_scale
        said = []
        if c.device.type == "cpu" and s.width * s.height > CPU_SLOW_PIXELS:
            said.append(f"{s.width}x{s.height} on the CPU: time and memory grow with the pixels (and attention's "
                        f"with their square), so each panel may take many minutes and gigabytes; "
                        f"use a GPU or a smaller --size, e.g. {native}x{native}")
        if max(s.width, s.height) > 2 * native:
            said.append(f"{s.width}x{s.height} is over twice the {native} px the model {c.spec.name} was trained at: "
                        "expect repeated or broken figures; render at its size and upscale instead")
        return said

    def _fit_memory_budget(self, config: MAGAConfig) -> MAGAConfig:
        """Lower the token budget so the memory bank stays under ``maga.memory_budget_mb``."""
        cap = self.story.settings.maga.memory_budget_mb
        if cap is None or not self.story.settings.maga.enabled:
            return config
        s, c = self.sampling, self.components
        shapes = layer_shapes(c.unet, (s.height // c.vae_scale, s.width // c.vae_scale))
        branches = config.memory_branches(2 if s.guidance_scale > 1 else 1)
        budget = fit_token_budget(
            shapes, config.first_layer, s.steps - config.start_step, branches,
            c.dtype.itemsize, retained_panels(self.policy, len(self.story.panels)), int(cap * 2**20),
            config.token_budget,
        )
        return replace(config, token_budget=budget)

    # --- planning ---------------------------------------------------------------------------

    def reusable(self, n: int) -> bool:
        meta = read_png_meta(panel_path(self.out, n))
        return meta is not None and meta.get("fingerprint") == self.prints[n]

    def saved_memory(self, n: int) -> bool:
        return n >= 0 and MemoryBank.saved_fingerprint(memory_path(self.out, n)) == self.prints[n]

    def plan(self) -> tuple[list[int], list[int], list[int]]:
        """(panels to render, panels to denoise for memory only, panels whose memory to load)."""
        panels = range(len(self.story.panels))
        if self.options.only is not None:
            bad = sorted(n for n in self.options.only if n not in panels)
            if bad:
                raise ValueError(f"--only {bad}: the story has panels 0..{len(panels) - 1}")
            render = sorted(self.options.only)
        else:
            render = [n for n in panels if not (self.options.resume and self.reusable(n))]
        saved = functools.cache(self.saved_memory)
        # Reference pictures' memory (negative panels) is recorded apart: see _reference_memory.
        memory = [m for m in self.policy.closure(render, at_hand=saved) if m not in render and m >= 0]
        return render, [m for m in memory if not saved(m)], [m for m in memory if saved(m)]

    # --- execution --------------------------------------------------------------------------

    def _jobs(self, panels: list[int], run: MAGARun) -> list[PanelJob]:
        """Every panel's job; each distinct text is encoded once, each distinct sketch's condition made once."""
        c = self.components
        encode = functools.cache(lambda text: encode_text(c, text))
        controls: dict[str | None, torch.Tensor] = {}  # by sketch file hash
        uncond, uncond_pooled = encode_negative(c, self.story.negative_prompt)
        jobs = []
        for n in panels:
            p = self.inputs[n]
            cond, pooled = encode(p.prompt)
            run.conditions[n] = pooled  # SDXL: the second encoder's, as maga.attach reads it
            if p.mask is not None:
                run.subject_masks[n] = torch.from_numpy(p.mask).to(c.device)
            if p.canny is not None and p.sketch_hash not in controls:
                controls[p.sketch_hash] = control_tensor(p.canny, c)
            control = controls[p.sketch_hash] if p.canny is not None else None
            jobs.append(PanelJob(n, p.seed, cond, uncond, control, pooled[None], uncond_pooled[None]))
        return jobs

    def chunk_plan(self, panels: int) -> ChunkPlan:
        """How many of ``panels`` panels to denoise per UNet call, and why."""
        s = self.story.settings
        if s.mode == "sequential":
            return ChunkPlan(1, "sequential mode")
        if s.mode == "batched":
            size = max(1, min(s.chunk_size or panels, panels))  # 1 where nothing is left to denoise
            return ChunkPlan(size, f"batched mode, chunk_size {s.chunk_size or 'all'}")
        return plan_chunk(panels, *self._panel_estimates(), available_bytes(self.components.device), s.chunk_size)

    def _panel_estimates(self) -> tuple[int, int, int]:
        """(one panel's activations, one panel's MAGA memory, panels the memory keeps), in bytes and panels."""
        c, sp = self.components, self.sampling
        shapes = layer_shapes(c.unet, (sp.height // c.vae_scale, sp.width // c.vae_scale))
        branches, element = 2 if sp.guidance_scale > 1 else 1, c.dtype.itemsize
        cfg, n_story = self.config, len(self.story.panels)
        sources = max(len(self.policy.sources(n)) for n in range(n_story))
        per_panel = activation_bytes(shapes, cfg.first_layer, sources, cfg.token_budget, branches, element,
                                     routed=self.routing is not None)
        bank = panel_bytes(shapes, cfg.first_layer, sp.steps - cfg.start_step, cfg.memory_branches(branches), element,
                           cfg.token_budget) if sources else 0
        return per_panel, bank, retained_panels(self.policy, n_story)

    def memory_warning(self, plan: ChunkPlan, panels: int) -> str | None:
        """Said before the work when the run's estimated peak (beyond the loaded model) exceeds the free memory."""
        available = available_bytes(self.components.device)
        if available is None or panels == 0:
            return None
        per_panel, bank, retained = self._panel_estimates()
        need = chunk_bytes(plan.size, panels, per_panel, bank, retained)
        if need <= available:
            return None
        s, mib = self.story.settings, 2**20
        lower = ["a smaller --size"] + (["--mode sequential"] if plan.size > 1 else [])
        if bank:
            lower.append("a smaller --token-budget (or --memory-budget-mb)")
        return (f"this run needs about {need / mib:.0f} MiB beyond the model ({plan.size} panel(s) at a time at "
                f"{s.width}x{s.height}), more than the {available / mib:.0f} MiB free on {self.components.device}: "
                f"it may run out of memory; lower it with {', '.join(lower)}")

    @staticmethod
    def _chunks(panels: list[int], size: int) -> list[list[int]]:
        return [panels[i : i + size] for i in range(0, len(panels), size)]

    def execute(self) -> RunReport:
        start = time.perf_counter()
        render, recompute, load_mem = self.plan()
        report = RunReport(self.out, rendered=render, recomputed=recompute,
                           warnings=list(self.warnings))
        for n in (n for n in range(len(self.story.panels)) if n not in render):
            (report.reused if panel_path(self.out, n).is_file() else report.missing).append(n)
        c = self.components
        run = MAGARun(self.config, MemoryBank(), routing=self.routing)
        previous = install(c.unet, run)
        for m in load_mem:
            run.memory.load_panel(m, memory_path(self.out, m), c.device, c.dtype)
        compute = sorted(set(render) | set(recompute))
        report.references = self._reference_memory(run, [m for m in self.policy.closure(compute) if m < 0])
        jobs = {j.index: j for j in self._jobs(compute, run)}
        plan = self.chunk_plan(len(compute))
        if (warning := self.memory_warning(plan, len(compute))) is not None:
            log.warning(warning)
            report.warnings.append(warning)
        scheduler = prepared_scheduler(c, self.sampling)  # set up once; each chunk denoises with a fresh copy
        chunks = self._chunks(compute, plan.size)
        timings: dict[int, float] = {}
        bar = tqdm(total=len(compute) * self.sampling.steps, unit="step", disable=not self.options.progress,
                   desc="stage 2")
        try:
            for k, chunk in enumerate(chunks):
                later = [n for ch in chunks[k + 1 :] for n in ch]
                needed = {m for n in later for m in self.policy.sources(n)}
                write = frozenset(n for n in chunk if n in needed or self.options.keep_memory)
                bar.set_postfix_str(f"panel {','.join(map(str, chunk))} of {len(self.story.panels)}")
                t0 = time.perf_counter()
                latents = denoise(c, [jobs[n] for n in chunk], self.sampling, run, write=write,
                                  on_step=lambda _: self._step(bar, chunk), scheduler=scheduler)
                for n in (n for n in chunk if n in render):  # each panel kept the moment it is decoded
                    (image,) = decode(c, latents[chunk.index(n)][None])
                    self._save_panel(n, image)
                    timings[n] = (time.perf_counter() - t0) / len(chunk)
                    if self.options.on_panel is not None:
                        self.options.on_panel(n)
                if self.options.keep_memory:
                    for n in write:
                        run.memory.save_panel(n, memory_path(self.out, n), self.prints[n])
                run.memory.drop(run.memory.panels() - needed)
        finally:
            bar.close()
            c.unet.set_attn_processor(previous)
        report.seconds = time.perf_counter() - start
        report.info = self._write_summary(report, timings, run, plan)
        return report

    def _reference_memory(self, run: MAGARun, panels: list[int]) -> dict[str, list[str]]:
        """Load the reference pictures' memory panels from the cache, recording (and caching) those not there."""
        c, done = self.components, {"recorded": [], "cached": []}
        scheduler = prepared_scheduler(c, self.sampling)
        for m in panels:
            reference, path = self.references[m], reference_path(self.out, self.reference_prints[m])
            if MemoryBank.saved_fingerprint(path) == self.reference_prints[m]:
                run.memory.load_panel(m, path, c.device, c.dtype)
                run.conditions[m] = encode_text(c, reference.prompt)[1]  # the condition bias reads it
                done["cached"].append(reference.character)
                continue
            record_reference(c, run, m, reference, self.story.negative_prompt, self.sampling,
                             (self.story.settings.canny_low, self.story.settings.canny_high), scheduler)
            run.memory.save_panel(m, path, self.reference_prints[m])
            done["recorded"].append(reference.character)
        return done

    def _step(self, bar: tqdm, chunk: list[int]) -> None:
        bar.update(len(chunk))
        self.steps_done += len(chunk)  # tqdm does not count when disabled
        if self.options.on_step is not None:
            self.options.on_step(tuple(chunk), self.steps_done, bar.total)

    def _save_panel(self, n: int, image: Image.Image) -> None:
        p = self.inputs[n]
        meta = {
            "panel": n, "seed": p.seed, "prompt": p.prompt, "fingerprint": self.prints[n],
            "model": self.components.spec.name, "versions": versions(),
            # Who is where: the regions MAGA routed by (an unplaced character took the sketch's subject).
            "characters": [c.model_dump(mode="json", exclude_none=True) for c in self.story.placements(n)],
            "setting": self.story.panels[n].setting,
            "story": self.story.model_dump(mode="json", by_alias=True),
        }
        if p.canny is not None:
            save_png(p.canny, self.out / "conditions" / f"panel_{n:02d}_canny.png")
            save_png(p.sketch, self.out / "conditions" / f"panel_{n:02d}_sketch.png")
        # Last: a panel file means the panel is complete, conditions included (what resume relies on).
        save_png(image, panel_path(self.out, n), meta)

    def _write_summary(self, report: RunReport, timings: dict[int, float], run: MAGARun, plan: ChunkPlan) -> dict:
        panels = [panel_path(self.out, n) for n in range(len(self.story.panels))]
        if all(p.exists() for p in panels):
            images = [Image.open(p).convert("RGB") for p in panels]
            captions = [panel.caption for panel in self.story.panels]
            pages = paginate([image.size for image in images], min_side=STRIP_MIN_SIDE)
            for k, page in enumerate(pages):
                title = self.story.title if len(pages) == 1 else f"{self.story.title or ''} ({k + 1}/{len(pages)})".lstrip()
                save_png(compose_page([images[i] for i in page], [captions[i] for i in page], title=title,
                                      min_side=STRIP_MIN_SIDE), strip_path(self.out, k))
            for stale in strip_pages(self.out)[len(pages):]:  # a longer story's pages, rendered here before
                stale.unlink()
        atomic_write_text(self.out / "story.json", self.story.to_json())
        peak_cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        info = {
            "title": self.story.title, "model": self.components.spec.name, "device": str(self.components.device),
            "dtype": str(self.components.dtype).removeprefix("torch."),
            "mode": self.story.settings.mode, "chunk_size": plan.size, "chunk_reason": plan.reason,
            "settings": self.story.settings.model_dump(mode="json"),
            "maga_start_step": self.config.start_step, "maga_token_budget": self.config.token_budget,
            "maga_first_layer": self.config.first_layer,
            "maga_routed_tracks": [list(key) for key in self.routing.tracks.keys] if self.routing is not None else None,
            "maga_calls": run.calls, "memory_bank_peak_bytes": run.memory.peak_bytes,
            "panels": [
                {"index": n, "seed": self.inputs[n].seed, "file": str(panels[n].relative_to(self.out)),
                 "fingerprint": self.prints[n],
                 "status": "rendered" if n in report.rendered else "reused" if n in report.reused else "missing",
                 "seconds": round(timings[n], 3) if n in timings else None}
                for n in range(len(self.story.panels))
            ],
            "recomputed_for_memory": report.recomputed, "reference_memory": report.references,
            "total_seconds": round(report.seconds, 3),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "peak_cuda_bytes": peak_cuda, "versions": versions(),
        }
        atomic_write_text(self.out / "run.json", json.dumps(info, indent=2) + "\n")
        return info


def generate(story: Story, story_dir: Path, out: Path, options: RunOptions = RunOptions(),
             components: Components | None = None) -> RunReport:
    """Generate (or resume, or partly regenerate) a story into ``out``.

    ``out`` must be new, empty or sketchstory's (``options.force``: any folder but the story's own and
    ``/``); the run holds its lock throughout, so a second run into it fails at once (``BusyError``).
    """
    if torch.cuda.is_available():  # so that run.json reports this run's peak, not the process's
        torch.cuda.reset_peak_memory_stats()
    story = follow_model(story)
    sketches = read_sketches(story, story_dir, options.library)  # bad inputs fail before any work
    masks, references = read_masks(story, story_dir), read_references(story, story_dir)
    with output_folder(out, inputs=[story_dir], force=options.force):
        return StoryRun(story, sketches, out, options, components, masks, references).execute()
