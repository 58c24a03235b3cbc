"""The gate before the MAGA study: can this model's self-attention carry appearance at all?

Two cheap measurements on held-out world stories, the study runs only if both pass:

1. **Sharpness.** Rendering single panels, at the MAGA layers of the finest self-attention level,
   the effective number of attended tokens (exp of the attention row's entropy) over all tokens.
   1.0 is uniform attention, a global average that matches nothing; it must be <= 0.5.
2. **Upper bound.** Two panels with the same prompt (body colour unsaid) and the same sketch,
   different seeds. Copying panel 0's ``attn1`` output into panel 1 at every layer, step and
   guidance branch is the most any attention sharing can pass on. It must lower the Delta E of the
   carried attributes (body and hidden parts, read at the known masks) by >= 50 %; if even that
   leaves panel 1 as it was, the look does not live in self-attention and MAGA cannot carry it.

    python -m sketchstory.demo.gate [--weights DIR] [--stories 12]
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

from sketchstory.attention.layers import first_maga_layer
from sketchstory.attention.maga import MAGAConfig, MAGARun, install
from sketchstory.attention.policy import MemoryPolicy
from sketchstory.demo import world
from sketchstory.demo.consistency import part_colour
from sketchstory.demo.data import control_image
from sketchstory.models import DEMO_DIR, Components, ModelSpec, load
from sketchstory.pipeline.stage2 import PanelJob, Sampling, decode, denoise, encode_text

SHARPNESS_MAX = 0.5
REDUCTION_MIN = 0.5
DEFAULT_START_LAYER = 8  # the shipped default; the gate looks at the layers MAGA uses with it
SAMPLING = Sampling(64, 64, 20, 4.0, 1.0, "ddim")


@dataclass
class _ProbeRun(MAGARun):
    """Plain attention for panel 0 (its outputs recorded, its sharpness measured); panel 1 either
    plain or given panel 0's outputs (``copy``)."""

    copy: bool = False
    saved: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    sharpness: dict[int, list[float]] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        key = (layer, self.state.step)
        if self.state.panels == (1,) and self.copy:
            return self.saved[key]
        out = F.scaled_dot_product_attention(q, k, v)
        if self.state.panels == (0,):
            self.saved[key] = out
            p = (q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
            entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
            self.sharpness.setdefault(layer, []).append(float(entropy.exp().mean() / k.shape[-2]))
            self.tokens[layer] = k.shape[-2]
        return out


def _carried_delta_e(a: np.ndarray, b: np.ndarray, sample: world.Sample) -> float:
    """Mean Delta E between two renders of one sketch over the body and the hidden parts."""
    parts = ["body", *sample.hidden_masks]
    return float(np.mean([np.linalg.norm(part_colour(a, sample.masks[p]) - part_colour(b, sample.masks[p]))
                          for p in parts]))


def denoise_panel(components: Components, run: MAGARun, prompt: str, sketch: np.ndarray, seed: int, panel: int,
                 write: frozenset[int] = frozenset()) -> np.ndarray:
    """One world panel through ``run``'s attention (``write``: the panels whose keys/values it keeps)."""
    cond, _ = encode_text(components, prompt)
    uncond, _ = encode_text(components, "")
    control = torch.from_numpy(control_image(sketch)).permute(2, 0, 1)[None].float().div(255.0)
    job = PanelJob(panel, seed, cond, uncond, control.to(components.device, components.dtype))
    latents = denoise(components, [job], SAMPLING, run, write=write)
    return np.asarray(decode(components, latents)[0])


def run_gate(components: Components, n_stories: int = 12, seed: int = 900_000) -> dict:
    run = _ProbeRun(MAGAConfig(policy=MemoryPolicy(), first_layer=0, start_step=0))
    previous = install(components.unet, run)
    plain, copied = [], []
    for k in range(n_stories):
        sample = world.make_story(seed + k, 1).panels[0]
        prompt = sample.scene.describe(colour=False)
        first = denoise_panel(components, run, prompt, sample.sketch, 1000 + k, 0)
        run.copy = False
        plain.append(_carried_delta_e(first, denoise_panel(components, run, prompt, sample.sketch, 2000 + k, 1), sample))
        run.copy = True
        copied.append(_carried_delta_e(first, denoise_panel(components, run, prompt, sample.sketch, 2000 + k, 1), sample))
        run.saved.clear()
    components.unet.set_attn_processor(previous)
    layers = sorted(run.tokens)
    finest = max(run.tokens.values())
    first_maga = first_maga_layer(DEFAULT_START_LAYER, len(layers))
    gated = [layer for layer in layers if layer >= first_maga and run.tokens[layer] == finest]
    per_layer = {layer: round(float(np.mean(run.sharpness[layer])), 3) for layer in layers}
    sharpness = float(np.mean([per_layer[layer] for layer in gated]))
    reduction = 1.0 - float(np.mean(copied)) / float(np.mean(plain))
    return {
        "stories": n_stories,
        "sharpness_per_layer": per_layer,
        "tokens_per_layer": {layer: run.tokens[layer] for layer in layers},
        "gated_layers": gated,
        "sharpness": round(sharpness, 3),
        "sharpness_pass": sharpness <= SHARPNESS_MAX,
        "delta_e_plain": round(float(np.mean(plain)), 1),
        "delta_e_out_copy": round(float(np.mean(copied)), 1),
        "reduction": round(reduction, 3),
        "reduction_pass": reduction >= REDUCTION_MIN,
        "passed": sharpness <= SHARPNESS_MAX and reduction >= REDUCTION_MIN,
    }


def describe(result: dict) -> str:
    verdict = "PASSED" if result["passed"] else "FAILED"
    return (f"gate {verdict} on {result['stories']} held-out stories: sharpness (effective tokens / N at layers "
            f"{result['gated_layers']}) {result['sharpness']:.3f} (<= {SHARPNESS_MAX}: "
            f"{'yes' if result['sharpness_pass'] else 'no'}); out-copy bound: carried Delta E "
            f"{result['delta_e_plain']:.1f} -> {result['delta_e_out_copy']:.1f}, {100 * result['reduction']:.0f} % lower "
            f"(>= {100 * REDUCTION_MIN:.0f} %: {'yes' if result['reduction_pass'] else 'no'}); per layer "
            f"{result['sharpness_per_layer']}")


def model_spec(weights: Path) -> ModelSpec:
    return ModelSpec("demo-candidate", str(weights), str(weights / "controlnet"), f"demo weights at {weights}", 64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sketchstory.demo.gate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=DEMO_DIR, help="a demo model folder (default: the shipped one)")
    ap.add_argument("--stories", type=int, default=12)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    result = run_gate(load(model_spec(args.weights)), args.stories)
    print(describe(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
