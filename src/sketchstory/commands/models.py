"""``sketchstory models``: list the named models."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the named models")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from sketchstory.models import REGISTRY
    from sketchstory.models.specs import native_settings
    from sketchstory.story import MagaSettings

    for spec in REGISTRY.values():
        print(f"{spec.name:10} {spec.description}\n{'':10} base: {spec.base}\n{'':10} controlnet: {spec.controlnet}")
        # What a story that leaves its settings out gets: the model's own, over the story format's defaults.
        maga = MagaSettings().model_dump() | {k.removeprefix("maga."): v for k, v in native_settings(spec.name).items()
                                              if k.startswith("maga.")}
        print(f"{'':10} defaults: {spec.native_size} px, {spec.steps} steps, guidance {spec.guidance:g}; MAGA from layer "
              f"{maga['start_layer']}, step {maga['start_step']}, memory {maga['memory']}, gain {maga['gain']:g}"
              + (f", memory guidance {maga['memory_guidance']:g}" if maga.get("memory_guidance") else "")
              + (", subject mask" if maga["subject_mask"] else "")
              + "".join(f"; placed characters: {k.replace('_', ' ')} {v:g}" for k, v in spec.maga_routed.items()))
    return 0
