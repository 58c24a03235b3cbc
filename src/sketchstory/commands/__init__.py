"""Subcommands of the ``sketchstory`` command, one module each.

Each module has ``register(subparsers) -> None``, which adds its subcommand(s) to the argparse
sub-parsers of ``sketchstory.cli`` and sets ``func`` (called as ``func(args) -> exit code``).
"""
