"""``hwq quantize``: quantize every floating tensor of a safetensors file and report the error."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from hwq.atomic import atomic_path
from hwq.errors import UsageError

HELP = "Quantize the floating tensors of a .safetensors file (int, int_asym, fp, bitmod, ant, mx, fixed); print MSE/SQNR."

_GROUP_FORMATS = ("int", "int_asym", "fp", "bitmod", "ant", "mx")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN.safetensors", help="tensors to quantize")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors",
                   help="dequantized float32 tensors (original names) plus <name>.codes/.scales/.row_scale/.selectors")
    p.add_argument("--format", required=True, metavar="F", help=f"one of {', '.join(_GROUP_FORMATS)}, fixed")
    p.add_argument("--bits", type=int, metavar="B", help="weight bits (group formats)")
    p.add_argument("--group-size", type=int, default=None, metavar="G",
                   help="weights per group along each row (0: one group per row; default 128; mx: 32)")
    fx = p.add_argument_group("--format fixed (ap_fixed<W, I, Q, O>, elementwise)")
    fx.add_argument("--width", type=int, metavar="W", help="total bits")
    fx.add_argument("--int-bits", type=int, metavar="I", help="integer bits including the sign")
    fx.add_argument("--rounding", default=None, help="TRN (default), TRN_ZERO, RND, RND_ZERO, RND_MIN_INF, RND_INF, RND_CONV")
    fx.add_argument("--overflow", default=None, help="WRAP (default), SAT, SAT_ZERO, SAT_SYM, WRAP_SM")
    fx.add_argument("--unsigned", action="store_true", help="ap_ufixed")
    p.add_argument("--json", action="store_true", help="print the per-tensor table as JSON")


def _load(path: str) -> dict[str, Any]:
    from hwq.cli.validate import finite_tensors, safetensors_input

    tensors = safetensors_input(path, "input")
    finite_tensors(tensors, f"input {path!r}")
    return tensors


def _reject_other_flags(args: argparse.Namespace) -> None:
    """Flags of the other kind of format are errors, not silently ignored."""
    if args.format == "fixed":
        given = [f for f, val in (("--bits", args.bits), ("--group-size", args.group_size)) if val is not None]
        if given:
            raise UsageError(f"{' and '.join(given)} do not apply to --format fixed (elementwise ap_fixed); "
                             f"use --width and --int-bits")
        return
    given = [f for f, val in (("--width", args.width), ("--int-bits", args.int_bits), ("--rounding", args.rounding),
                              ("--overflow", args.overflow), ("--unsigned", args.unsigned or None)) if val is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only apply to --format fixed; drop them for --format {args.format}")
    if args.format == "mx" and args.group_size is not None:
        from hwq.datatypes import MX_BLOCK

        if args.group_size != MX_BLOCK:
            raise UsageError(f"--group-size {args.group_size} does not apply to --format mx (its block is "
                             f"{MX_BLOCK} weights by definition); drop it")


def _check_format(args: argparse.Namespace) -> Any:
    from hwq.datatypes import FORMAT_BITS, FixedFormat, resolve

    if args.format != "fixed" and args.format not in FORMAT_BITS:
        raise UsageError(f"unknown format {args.format!r}; choose one of {', '.join(_GROUP_FORMATS)}, fixed")
    _reject_other_flags(args)
    if args.format == "fixed":
        if args.width is None or args.int_bits is None:
            raise UsageError("--format fixed needs --width W and --int-bits I")
        try:
            return FixedFormat(args.width, args.int_bits, signed=not args.unsigned, rounding=args.rounding or "TRN",
                               overflow=args.overflow or "WRAP")
        except ValueError as err:
            raise UsageError(str(err)) from err
    if args.bits is None:
        raise UsageError(f"--format {args.format} needs --bits (one of {', '.join(map(str, FORMAT_BITS[args.format]))})")
    try:
        resolve(args.format, args.bits)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if args.group_size is None:
        args.group_size = 128
    if args.group_size < 0:
        raise UsageError(f"--group-size must be >= 0 (0: one group per row), got {args.group_size}")
    return None


def _quantize_all(tensors: dict[str, Any], args: argparse.Namespace, fixed: Any) -> tuple[dict[str, Any], list[dict]]:
    import torch

    from hwq.datatypes import MX_BLOCK
    from hwq.quant import quantize_weight_codes, weight_error

    out: dict[str, Any] = {}
    rows: list[dict] = []
    for name, t in tensors.items():
        if not t.is_floating_point():
            out[name] = t
            continue
        if fixed is not None:
            from hwq.quant import fixed_point
            from hwq.quant.fixed import fixed_point_codes

            kw = dict(signed=fixed.signed, rounding=fixed.rounding, overflow=fixed.overflow)
            deq = fixed_point(t.to(torch.float64), fixed.width, fixed.int_bits, **kw)
            out[name] = deq.to(torch.float32)
            out[f"{name}.codes"] = fixed_point_codes(t, fixed.width, fixed.int_bits, **kw)
        elif t.dim() >= 2:
            k = t[0].numel()
            gs = MX_BLOCK if args.format == "mx" else (args.group_size or k)
            if k % gs:
                raise UsageError(f"tensor {name!r}: group size {gs} does not divide its row length {k} "
                                 f"(shape {list(t.shape)}); choose a divisor of {k} or --group-size 0")
            q = quantize_weight_codes(t, args.format, args.bits, group_size=args.group_size)
            deq = q.dequantize(torch.float64)
            out[name] = deq.to(torch.float32)
            out[f"{name}.codes"] = q.codes.to(torch.uint8 if args.bits <= 8 else torch.int32)
            out[f"{name}.scales"] = q.scale_int.to(torch.int32)
            out[f"{name}.row_scale"] = q.row_scale.to(torch.float64)
            out[f"{name}.selectors"] = q.selectors.to(torch.uint8)
            if args.format == "int_asym":
                out[f"{name}.zero_point"] = q.zero_point.to(torch.uint8)
        else:
            out[name] = t
            rows.append({"name": name, "shape": list(t.shape), "quantized": False, "mse": 0.0, "sqnr_db": None})
            continue
        mse, sqnr = weight_error(t, deq)
        rows.append({"name": name, "shape": list(t.shape), "quantized": True, "mse": mse,
                     "sqnr_db": None if math.isinf(sqnr) else sqnr})
    return out, rows


def _save_atomic(tensors: dict[str, Any], path: str) -> None:
    from safetensors.torch import save_file

    from hwq.cli.validate import output_file

    dest = output_file(path, "-o")
    with atomic_path(dest, suffix=".safetensors.tmp") as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))


def _print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col, just in (("tensor", "left"), ("shape", "left"), ("MSE", "right"), ("SQNR dB", "right")):
        table.add_column(col, justify=just)
    for r in rows:
        sq = "exact" if r["quantized"] and r["sqnr_db"] is None else ("-" if r["sqnr_db"] is None else f"{r['sqnr_db']:.2f}")
        table.add_row(r["name"], "x".join(map(str, r["shape"])), f"{r['mse']:.3e}" if r["quantized"] else "kept", sq)
    Console().print(table)


def run(args: argparse.Namespace) -> int:
    from hwq.cli.validate import output_file

    fixed = _check_format(args)
    output_file(args.output, "-o")  # before the (slow) quantization
    tensors = _load(args.input)
    out, rows = _quantize_all(tensors, args, fixed)
    _save_atomic(out, args.output)
    if fixed is not None:
        what = fixed.name
    elif args.format == "mx":
        what = f"mx{args.bits} (block 32)"
    else:
        what = f"{args.format}{args.bits} (group {args.group_size or 'row'})"
    if args.json:
        json.dump({"format": what, "output": args.output, "tensors": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(rows, f"hwq quantize: {what} -> {args.output}")
    return 0
