"""Why MAGA's copies of the unspoken colours are not exact: where a later panel's queries look.

Two-panel stories of the held-out world (design ``diffsk``: one prompt, two sketches; or ``same``: one
prompt and sketch, two seeds; each story its own seeds). Panel 0 is denoised plainly and its keys/values
kept; panel 1 reads them with the demo model's MAGA defaults (from layer 0 and step 0, its memory gain),
the world's true character mask as the subject mask, so that what is measured is the model's
correspondence, not the sketch mask's precision. At every layer
and step, for panel 1's query tokens inside each carried part (the body and the hidden parts; the part's
mask pooled to the layer's grid, a token in when it is mostly covered), averaged over heads on the
conditional branch:

- **memory mass**: the attention on panel 0's tokens;
- **precision**: the share of that mass on panel 0's tokens of the same part.

Printed per self-attention layer (in execution order, with its token grid) and half of the steps, with
the per-part Delta E of panel 1 to panel 0 (median, and the share within the consistency threshold, for
parts smaller and larger than one token of the 8x8 grid) and the consistency score. A low precision
says that correspondence, not memory mass, limits exact copies: more gain raises the right and the wrong
mass together. Parts smaller than a token of the layers that carry the colour (compare MAGA from a later
start layer) are matched and copied blurred with their neighbours.

    python -m sketchstory.demo.correspondence [--weights DIR] [--stories 24] [--gain 2] [--design same]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchstory.attention.maga import MAGAConfig, MAGARun, install
from sketchstory.attention.policy import MemoryPolicy
from sketchstory.attention.tokens import layer_grid
from sketchstory.demo.consistency import DEFAULT_THRESHOLD, part_colour
from sketchstory.demo.gate import SAMPLING, model_spec, denoise_panel
from sketchstory.demo.study import design_story, first_panel_seed
from sketchstory.models import DEMO_DIR, REGISTRY, Components, load


def _pooled(mask: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """The share of each grid cell that ``mask`` covers, flattened."""
    return F.adaptive_avg_pool2d(torch.from_numpy(mask)[None, None].float(), grid)[0, 0].flatten()


@dataclass
class _Probe(MAGARun):
    """MAGA as the pipeline runs it, plus the attention statistics of panel 1's part queries."""

    parts: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})  # panel 0's, panel 1's part masks
    stats: dict[tuple[int, int, int], list[tuple[float, float]]] = field(default_factory=dict)  # layer, grid, half

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = super().attend(layer, q, k, v)
        st = self.state
        if st.panels != (1,) or not self.is_active(layer):
            return out
        n_tok = k.shape[2]
        grid = layer_grid(n_tok, st.latent_hw)
        mem_k, _ = self.memory.get(0, layer, st.step)
        read = self._indices(0, layer, n_tok)
        read = torch.arange(n_tok) if read is None else read.cpu()
        keys = torch.cat([k[-1:], mem_k[-1:].to(k)], dim=2).float()  # the conditional branch
        logits = q[-1:].float() @ keys.transpose(-1, -2) / math.sqrt(q.shape[-1])
        logits[..., n_tok:] += self.config.gain
        attention = logits.softmax(-1).mean(1)[0].cpu()  # (tokens, tokens + memory), mean over heads
        half = 2 * st.step // max(1, SAMPLING.steps)
        for part, mask in self.parts[1].items():
            queries = _pooled(mask, grid) > 0.5
            if not queries.any():
                continue
            same = (_pooled(self.parts[0][part], grid) > 0.5)[read]
            rows = attention[queries, n_tok:]
            mass = rows.sum(-1)
            precision = (rows * same).sum(-1) / mass.clamp_min(1e-12)
            self.stats.setdefault((layer, grid[0], half), []).append((float(mass.mean()), float(precision.mean())))
        return out


def run_probe(components: Components, n_stories: int = 24, seed: int = 2_000_000, gain: float = 2.0,
              design: str = "diffsk") -> dict:
    """The module's measurements on ``n_stories`` two-panel stories from ``seed`` (default: the dev set's)."""
    run = _Probe(MAGAConfig(policy=MemoryPolicy(all=True), first_layer=0, start_step=0, gain=gain, subject_mask=True))
    previous = install(components.unet, run)
    distances: list[dict[str, float]] = []
    small: list[bool] = []  # per hidden part: under one token of the 8x8 grid in either panel
    try:
        for k in range(n_stories):
            story, prompts = design_story(design, seed + k, 2)
            panels = story.panels
            h, w = panels[0].sketch.shape
            latent = (h // components.vae_scale, w // components.vae_scale)
            run.subject_masks = {i: F.adaptive_max_pool2d(torch.from_numpy(p.masks["character"])[None, None].float(),
                                                          latent)[0, 0] > 0 for i, p in enumerate(panels)}
            names = ["body", *panels[0].hidden_masks]
            run.parts = tuple({n: p.masks[n] for n in names} for p in panels)
            first = first_panel_seed(seed + k)
            images = [denoise_panel(components, run, prompts[i], panels[i].sketch, first + i, i,
                                   frozenset({0}) if i == 0 else frozenset()) for i in range(2)]
            distances.append({n: float(np.linalg.norm(part_colour(images[1], panels[1].masks[n])
                                                      - part_colour(images[0], panels[0].masks[n]))) for n in names})
            small += [min(int(p.masks[n].sum()) for p in panels) < h * w / 64 for n in names[1:]]
    finally:
        components.unet.set_attn_processor(previous)
    hidden = [d for ds in distances for n, d in ds.items() if n != "body"]
    steps = SAMPLING.steps
    attention = {f"layer {layer} ({g}x{g}), steps {q * steps // 2}-{(q + 1) * steps // 2 - 1}":
                 {"memory_mass": round(float(np.mean([s[0] for s in v])), 3),
                  "precision": round(float(np.mean([s[1] for s in v])), 3)}
                 for (layer, g, q), v in sorted(run.stats.items())}
    within, small_parts = np.array(hidden) <= DEFAULT_THRESHOLD, np.array(small)
    by_size = {label: round(float(np.mean(within[small_parts == flag])), 3) if (small_parts == flag).any() else None
               for label, flag in (("under_one_8x8_token", True), ("larger", False))}
    return {
        "design": design, "stories": n_stories, "seed": seed, "gain": gain, "attention": attention,
        "hidden_de_median": round(float(np.median(hidden)), 1),
        "hidden_within_threshold": round(float(np.mean(within)), 3),
        "hidden_within_threshold_by_size": by_size,
        "body_de_median": round(float(np.median([ds["body"] for ds in distances])), 1),
        "score": round(float(np.mean([all(d <= DEFAULT_THRESHOLD for n, d in ds.items() if n != "body")
                                      for ds in distances])), 3),
    }


def describe(result: dict) -> str:
    size = ", ".join(f"{k.replace('_', ' ')}: {'-' if v is None else f'{100 * v:.0f} %'}"
                     for k, v in result["hidden_within_threshold_by_size"].items())
    lines = [f"{result['stories']} two-panel stories, design {result['design']} (seeds from {result['seed']}), "
             f"memory gain {result['gain']}:",
             f"hidden parts: median Delta E {result['hidden_de_median']}, {100 * result['hidden_within_threshold']:.0f} % "
             f"within {DEFAULT_THRESHOLD:.0f} ({size}); body median {result['body_de_median']}; "
             f"consistency score {result['score']}",
             "| layer (grid), steps | memory mass | precision (same part) |", "|---|---|---|"]
    lines += [f"| {k} | {v['memory_mass']:.2f} | {v['precision']:.2f} |" for k, v in result["attention"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sketchstory.demo.correspondence", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=DEMO_DIR, help="a demo model folder (default: the shipped one)")
    parser.add_argument("--stories", type=int, default=24)
    parser.add_argument("--seed", type=int, default=2_000_000, help="first world story seed (default: the dev set)")
    parser.add_argument("--gain", type=float, default=float(REGISTRY["demo"].maga.get("gain", 0.0)),
                        help="MAGA's memory gain (default: the demo model's)")
    parser.add_argument("--design", choices=("diffsk", "same"), default="diffsk",
                        help="diffsk: two sketches of one character; same: one sketch, two seeds")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    result = run_probe(load(model_spec(args.weights)), args.stories, args.seed, args.gain, args.design)
    print(describe(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
