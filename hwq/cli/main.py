"""Entry point of the ``hwq`` command: builds the parser from the command modules and
turns :class:`hwq.errors.HwqError` into a one-line message and its exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from hwq import __version__
from hwq.errors import HwqError

#: Sub-command name -> module under ``hwq.cli`` that implements it.
COMMANDS: dict[str, str] = {
    "doctor": "hwq.cli.doctor_cmd",
    "rtl": "hwq.cli.rtl_cmd",
    "synth": "hwq.cli.synth_cmd",
    "cost": "hwq.cli.cost_cmd",
    "explore": "hwq.cli.explore_cmd",
    "codesign": "hwq.cli.codesign_cmd",
    "sim": "hwq.cli.sim_cmd",
    "bench": "hwq.cli.bench_cmd",
    "quantize": "hwq.cli.quantize_cmd",
}


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr with exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """Return the full ``hwq`` parser with every sub-command registered."""
    parser = OneLineParser(
        prog="hwq",
        description="Hardware-aware accelerator co-design: precision plans, RTL, and bit-exact co-simulation.",
    )
    parser.add_argument("--version", action="version", version=f"hwq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hwq`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except HwqError as err:
        sys.stderr.write(f"hwq {args.command}: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("hwq: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
