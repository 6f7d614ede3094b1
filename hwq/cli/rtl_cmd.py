"""``hwq rtl``: generate the Verilog of an accelerator preset (or spec YAML) and its blocks."""

from __future__ import annotations

import argparse

from hwq.spec import DEFAULT_PRESET

HELP = "generate Verilog (array, PE, decoder, dequantizer, FPGA datapath), a Yosys script and a port README"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--arch`` preset name or YAML path; ``--out`` folder."""
    parser.add_argument("--arch", default=DEFAULT_PRESET, help=f"preset name or spec YAML path (default: {DEFAULT_PRESET})")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically; an existing one only if hwq wrote it: see README, Output paths)")


def run(args: argparse.Namespace) -> int:
    """Write the RTL folder and print the files written."""
    from pathlib import Path

    from hwq.cli import validate as v
    from hwq.errors import UsageError
    from hwq.hw.presets import array_config_for, write_rtl

    v.output_dir(args.out, "--out", "rtl")
    spec = v.spec(args.arch)
    try:
        cfg = array_config_for(spec)
    except ValueError as err:
        raise UsageError(f"spec {spec.name!r} cannot be built as RTL: {err}") from None
    files = write_rtl(spec, Path(args.out), cfg)
    print(f"wrote {len(files)} files to {args.out}: {', '.join(files)}")
    return 0
