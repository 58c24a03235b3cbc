"""The generation-settings flags shared by ``generate`` and ``batch``, and the overrides they give."""

from __future__ import annotations

import argparse
from typing import Any

from sketchstory.commands.args import SizeAction, size


def add_settings_args(p: argparse.ArgumentParser) -> None:
    """Flags that override the story's ``settings`` (and are recorded in the outputs)."""
    g = p.add_argument_group("generation settings (override the story file)")
    g.add_argument("--model", help="registry name (see `sketchstory models`), hub id, local folder or .safetensors")
    g.add_argument("--controlnet", help="Canny ControlNet: hub id, local folder or file (default: the model's)")
    g.add_argument("--size", type=size, action=SizeAction, metavar="WxH", help="output size, multiples of 8")
    g.add_argument("--steps", type=int, help="denoising steps")
    g.add_argument("--guidance", type=float, dest="guidance_scale", help="classifier-free guidance scale")
    g.add_argument("--controlnet-scale", type=float, help="ControlNet conditioning scale (0 ignores sketches)")
    g.add_argument("--scheduler", choices=["ddim", "dpmpp-2m", "euler", "unipc"])
    g.add_argument("--seed", type=int, help="base seed for panels without their own seed")
    g.add_argument("--mode", choices=["auto", "sequential", "batched"],
                   help="auto (default): batched in chunks that fit the free memory, else sequential; sequential: "
                        "panel after panel (thesis); batched: panels denoised together with a causal mask")
    g.add_argument("--chunk-size", type=int,
                   help="batched mode: panels per batch (0 = all); auto mode: the most per batch (0 = its own limit)")
    m = p.add_argument_group("MAGA (consistency memory)")
    m.add_argument("--no-maga", action="store_false", dest="enabled", default=None,
                   help="plain ControlNet generation, no shared memory")
    m.add_argument("--maga-start-layer", type=int, dest="start_layer",
                   help="first MAGA layer, in SD1.5's 16 self-attention layers (thesis: 8)")
    m.add_argument("--maga-start-step", dest="start_step",
                   help="first MAGA step: an index, or 'a/b' scaled to --steps (thesis: 24/50)")
    m.add_argument("--memory", help="memory policy, e.g. all, window:3, anchors:0+window:2, decay:0.7")
    m.add_argument("--maga-strength", type=float, dest="strength",
                   help="condition-aware weighting lambda among the memory panels (0 = all weigh the same)")
    m.add_argument("--maga-gain", type=float, dest="gain",
                   help="logit offset on every memory token: > 0 shares more, < 0 less (default 0)")
    m.add_argument("--memory-guidance", type=float, dest="memory_guidance",
                   help="0..1: share of the unconditional guidance branch that reads no memory, so guidance "
                        "amplifies the memory as it does the prompt (0 = the thesis)")
    m.add_argument("--token-budget", type=int, help="tokens shared per memory panel and layer (default: all)")
    m.add_argument("--memory-budget-mb", type=float, help="cap on the memory bank; lowers the token budget to fit")
    m.add_argument("--subject-mask", action="store_true", default=None,
                   help="share only the sketched subject's tokens (keeps backgrounds from bleeding)")
    m.add_argument("--maga-background", choices=["setting", "none"], dest="background",
                   help="stories that place characters: backgrounds share memory within a setting (default) or not at all")


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, as :meth:`Story.with_settings` changes.

    A flag overrides the setting its ``dest`` names (``maga.<name>`` for a MAGA setting); ``None``
    means not given.
    """
    from sketchstory.story import MagaSettings, Settings

    given = {key: value for key, value in vars(args).items() if value is not None}
    changes = {key: given[key] for key in Settings.model_fields if key in given}
    return changes | {f"maga.{key}": given[key] for key in MagaSettings.model_fields if key in given}
