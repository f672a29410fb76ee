"""`pqlr` command line: a thin layer; each subcommand module parses flags and calls one library function.

Each module in COMMANDS defines `add_parser(subparsers)` (which sets `func=run` on its parser)
and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import PqlrError

COMMANDS = ("train", "eval", "info", "prune", "compress", "verify", "plan", "estimate", "data", "ops")


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of a usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pqlr",
        description="PQLR: compress a PyTorch model (Prune, Quantize, Low-rank, distill) until it fits "
                    "a microcontroller, then emit bit-exact C and measure what it costs.",
        epilog="Run `pqlr COMMAND --help` for the flags of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # command not part of this build
            raise
        mod.add_parser(sub)
    return parser


def run_guarded(func, args) -> int:
    """Run a command; PqlrError becomes one line on stderr and its exit code, no traceback."""
    try:
        return int(func(args) or 0)
    except PqlrError as e:
        print(f"{os.path.basename(sys.argv[0]) or 'pqlr'}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
