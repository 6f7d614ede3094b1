"""Entry point of the ``hwq`` command: builds the parser from the command modules and
turns :class:`hwq.errors.HwqError` into a one-line message and its exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
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
    "finetune": "hwq.cli.finetune_cmd",
    "export": "hwq.cli.export_cmd",
}


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr with exit code 2 (no usage dump)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # "-1mJ" is a (negative) value, not an unknown option: the command rejects it as negative
        # with its own message instead of argparse's "expected one argument".
        self._negative_number_matcher = re.compile(r"^-\.?\d")

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
    previous = _exit_on_sigterm()
    try:
        return int(args._run(args) or 0)
    except HwqError as err:
        sys.stderr.write(f"hwq {args.command}: error: {_one_line(err)}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("hwq: interrupted\n")
        return 130
    except OSError as err:  # disk full, permissions, a path that vanished mid-run: no traceback
        if os.environ.get("HWQ_DEBUG"):
            raise
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        sys.stderr.write(f"hwq {args.command}: error: {err.strerror or type(err).__name__}{where}\n")
        return 1
    except Exception as err:  # noqa: BLE001 - the last resort: one line, HWQ_DEBUG=1 for the traceback
        if os.environ.get("HWQ_DEBUG"):
            raise
        sys.stderr.write(f"hwq {args.command}: internal error: {type(err).__name__}: {_one_line(err)[:300]} "
                         f"(rerun with HWQ_DEBUG=1 for the traceback and report it)\n")
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _exit_on_sigterm():
    """SIGTERM unwinds like Ctrl-C, so temp files and folders are removed on the way out (hwq.paths)."""
    main_pid = os.getpid()

    def handler(signum, _frame):  # noqa: ANN001
        if os.getpid() != main_pid:  # a forked worker (codesign --jobs): die as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        sys.stderr.write("hwq: terminated\n")
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (main() called from a worker thread)
        return None


if __name__ == "__main__":
    raise SystemExit(main())
