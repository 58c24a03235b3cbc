"""``sketchstory models``: list the named models."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the named models")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from sketchstory.models import REGISTRY

    for spec in REGISTRY.values():
        print(f"{spec.name:10} {spec.description}\n{'':10} base: {spec.base}\n{'':10} controlnet: {spec.controlnet}")
    return 0
