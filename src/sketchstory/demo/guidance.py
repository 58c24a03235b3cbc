"""How MAGA's memory meets classifier-free guidance: does it move both guidance branches alike?

With guidance the UNet predicts twice, without and with the prompt (u, c), and the sampler takes
u + s (c - u). Along a run in which both branches read the memory (``memory_guidance`` 0, the
model's other MAGA defaults), panel 1's UNet call is repeated at every step with the memory off, on
the same latents. On panel 1's hidden-part latent cells, Delta_u and Delta_c are the memory's changes
to the two predictions. The memory's effect on the guided prediction is then
(1 - s) Delta_u + s Delta_c, and s Delta_c when only the conditional branch reads it
(``memory_guidance`` 1). Where Delta_u ~ Delta_c, guidance scales the prompt and leaves the memory's
pull as it is: the finding that made memory guidance the demo model's default (stop 30).

Stories go through the ordinary runner (``study.render``), so the ControlNet sees the pipeline's own
sketch handling.

    python -m sketchstory.demo.guidance [--stories 12] [--seed 2000000] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchstory.atomic import atomic_write_text
from sketchstory.attention.maga import MAGAProcessor
from sketchstory.attention.policy import parse_policy
from sketchstory.demo.gate import model_spec
from sketchstory.demo.study import BASE, design_story, first_panel_seed, render
from sketchstory.models import DEMO_DIR, Components, load

STEP_RANGES = ((0, 1), (1, 4), (4, None))  # the first step, the next three (colours settle), the rest


def _effects(components: Components, story_seed: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """(step, Delta_u, Delta_c) of panel 1 of a two-panel ``diffsk`` story, on its hidden-part latent cells."""
    story, prompts = design_story("diffsk", story_seed, 2)
    recorded: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    busy = False

    def again_without_memory(module, args, kwargs, out):  # noqa: ANN001: a torch forward hook
        nonlocal busy
        run = next((p.run for p in module.attn_processors.values() if isinstance(p, MAGAProcessor)), None)
        if busy or run is None or run.state.panels != (0, 1) or run.state.branches != 2:
            return
        busy, config = True, run.config
        run.config = replace(config, policy=parse_policy("none"))
        try:
            plain = module(*args, **kwargs).sample
        finally:
            run.config, busy = config, False
        (u, c), (pu, pc) = out.sample.chunk(2), plain.chunk(2)
        recorded.append((run.state.step, (u - pu)[1], (c - pc)[1]))

    hook = components.unet.register_forward_hook(again_without_memory, with_kwargs=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            both_branches = {"maga": {"memory_guidance": 0.0}}
            render(components, Path(tmp), story, prompts, both_branches, first_panel_seed(story_seed))
    finally:
        hook.remove()
    hidden = np.any(list(story.panels[1].hidden_masks.values()), axis=0).astype(np.float32)
    cells = F.adaptive_avg_pool2d(torch.from_numpy(hidden)[None, None], tuple(recorded[0][1].shape[-2:]))[0, 0] > 0.25
    return [(step, du[:, cells].flatten(), dc[:, cells].flatten()) for step, du, dc in recorded]


def run_probe(components: Components, n_stories: int = 12, seed: int = 2_000_000) -> dict:
    """Per step range: |Delta_u| / |Delta_c|, their cosine, and the memory's effect on the guided prediction
    with both branches reading it and with the conditional one alone (means over stories and steps)."""
    s = BASE["guidance_scale"]
    rows = []
    for k in range(n_stories):
        for step, du, dc in _effects(components, seed + k):
            rows.append((step, float(du.norm() / dc.norm()), float(F.cosine_similarity(du, dc, dim=0)),
                         float(((1 - s) * du + s * dc).norm()), float((s * dc).norm())))
    table = np.array(rows)
    out = {"stories": n_stories, "seed": seed, "guidance_scale": s, "steps": {}}
    for lo, hi in STEP_RANGES:
        r = table[(table[:, 0] >= lo) & (table[:, 0] < (hi if hi is not None else np.inf))]
        out["steps"][f"{lo}-{int(r[:, 0].max())}"] = {
            "ratio": float(r[:, 1].mean()), "cosine": float(r[:, 2].mean()), "both_branches": float(r[:, 3].mean()),
            "conditional_only": float(r[:, 4].mean()), "amplification": float((r[:, 4] / r[:, 3]).mean())}
    return out


def describe(result: dict) -> str:
    lines = [f"{result['stories']} two-panel `diffsk` stories from seed {result['seed']}, guidance "
             f"{result['guidance_scale']:g}; the memory's change to panel 1's predictions on its hidden parts", "",
             "| steps | abs(Delta_u) / abs(Delta_c) | cos(Delta_u, Delta_c) | guided effect, both branches read "
             "| conditional branch only | ratio |", "|---|---|---|---|---|---|"]
    for steps, r in result["steps"].items():
        lines.append(f"| {steps} | {r['ratio']:.2f} | {r['cosine']:.2f} | {r['both_branches']:.3f} "
                     f"| {r['conditional_only']:.3f} | {r['amplification']:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sketchstory.demo.guidance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=DEMO_DIR, help="a demo model folder (default: the shipped one)")
    parser.add_argument("--stories", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2_000_000, help="first world story seed (default: the dev set)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    result = run_probe(load(model_spec(args.weights)), args.stories, args.seed)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
