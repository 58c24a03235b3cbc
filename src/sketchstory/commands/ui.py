"""``sketchstory ui``: the web application; Gradio is imported only when it runs (optional extra ``ui``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchstory.commands.args import bounded
from sketchstory.errors import CliError
from sketchstory.ui import DEFAULT_WORK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ui", help="the web application: edit, sketch and render stories in a browser")
    p.add_argument("story", type=Path, nargs="?",
                   help="a story file to open (default: the work folder's autosaved story, else a new one)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="work folder: the autosaved story, its sketches, renders and downloads "
                        "(default: ./sketchstory-work)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    p.add_argument("--port", type=bounded(int, 1, 65535), default=7860)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--library", type=Path,
                   help="sketch library folder (default: $SKETCHSTORY_LIBRARY, else the user's data folder)")
    p.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        from sketchstory.ui.app import main
    except ImportError as e:
        raise CliError(f"the web UI needs the 'ui' extra ({e.name} is missing): "
                       "pip install 'sketchstory[ui]'") from None
    main(args.host, args.port, args.story, args.work, args.device, args.library)
    return 0
