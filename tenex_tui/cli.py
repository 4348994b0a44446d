"""The `tenex-tui` entry point (placeholder until the CLI lands)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `tenex-tui`."""
    return argparse.ArgumentParser(
        prog="tenex-tui",
        description="A keyboard-driven terminal client for 10ex chat threads.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tenex-tui` and return its exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
