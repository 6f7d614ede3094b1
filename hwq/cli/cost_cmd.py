"""``hwq cost``: per-layer latency and energy of a model on an accelerator at a precision plan."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "per-layer latency (cycles) and energy (pJ) of a model on an accelerator spec at a precision"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq cost``."""
    parser.add_argument("--model", required=True, help="model recipe name (models/registry.py), e.g. resnet50")
    parser.add_argument("--arch", default="bitmod", help="accelerator preset (bitmod, int8_parallel, fpga_zu) "
                        "or path to a spec YAML (default: bitmod)")
    parser.add_argument("--plan", help="plan.json with per-layer {name, format, bits, act_bits}")
    parser.add_argument("--format", dest="fmt", help="uniform weight format family (e.g. bitmod, int, fp, ant); default: the "
                        "accelerator's widest supported format")
    parser.add_argument("--weights-bits", type=int, help="uniform weight bits (with --format)")
    parser.add_argument("--act-bits", type=int, help="activation bits (default: the accelerator's highest)")
    parser.add_argument("--json", action="store_true", help="print JSON (per-layer rows and totals) instead of a table")


def _uniform_choice(args, spec):
    from hwq.cost import Choice
    from hwq.datatypes import FORMAT_BITS
    from hwq.errors import UsageError

    act = args.act_bits if args.act_bits is not None else max(spec.arithmetic.act_bits)
    fmt = args.fmt
    bits = args.weights_bits
    if fmt is None and bits is None:
        fmt, bits = max(spec.arithmetic.weight_formats, key=lambda fb: fb[1])
    elif fmt is None or bits is None:
        raise UsageError("give --format and --weights-bits together (or a --plan)")
    if fmt not in FORMAT_BITS:
        raise UsageError(f"unknown weight format {fmt!r}; choose one of {', '.join(FORMAT_BITS)}")
    if bits not in FORMAT_BITS[fmt]:
        raise UsageError(f"format {fmt!r} has no {bits}-bit variant; supported bits: "
                         f"{', '.join(map(str, FORMAT_BITS[fmt]))}")
    return Choice(fmt, bits, act)


def _read_plan(path: str) -> dict:
    from hwq.errors import UsageError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"plan file {p} not found")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"plan file {p} is not valid JSON (line {err.lineno}: {err.msg})") from None


def run(args: argparse.Namespace) -> int:
    """Evaluate the cost model and print the table (or JSON)."""
    from hwq.cost import evaluate, evaluate_plan, format_energy, plan_choices
    from hwq.errors import UsageError
    from hwq.spec import load_spec
    from hwq.workload import capture
    from models.registry import get_recipe

    if args.plan and (args.fmt or args.weights_bits):
        raise UsageError("give either --plan or --format/--weights-bits, not both")
    recipe = get_recipe(args.model)
    spec = load_spec(args.arch)
    plan = _read_plan(args.plan) if args.plan else None
    choice = None if plan is not None else _uniform_choice(args, spec)
    if choice is not None and not spec.supports(choice.fmt, choice.bits, choice.act_bits):
        fm = ", ".join(f"{f}{b}" for f, b in spec.arithmetic.weight_formats)
        raise UsageError(f"accelerator {spec.name!r} does not run {choice}: weight formats {fm}; act_bits "
                         f"{', '.join(map(str, spec.arithmetic.act_bits))}")
    workload = capture(recipe.build(), recipe.example_input())
    if plan is not None:
        per_layer = plan_choices(plan, workload, spec)
        table, cols = evaluate_plan(workload, spec, per_layer)
    else:
        table = evaluate(workload, spec, [choice])
        cols = [0] * len(workload.layers)
        per_layer = [choice] * len(workload.layers)
    totals = table.totals(cols)
    rows = []
    for i, layer in enumerate(workload.layers):
        c = cols[i]
        rows.append({"name": layer.name, "kind": layer.kind, "m": layer.m, "k": layer.k, "n": layer.n,
                     "groups": layer.groups, "batch": layer.batch, "macs": layer.macs, "choice": str(per_layer[i]),
                     "compute_cycles": float(table.compute_cycles[i, c]), "dram_cycles": float(table.dram_cycles[i, c]),
                     "latency_cycles": float(table.latency_cycles[i, c]), "energy_pj": float(table.energy_pj[i, c]),
                     "weight_bits": float(table.weight_bits[i, c]),
                     "mapping": table.mapping_names[int(table.mapping[i, c])],
                     "breakdown_pj": {k: float(v[i, c]) for k, v in table.breakdown_pj.items()}})
    if args.json:
        json.dump({"model": recipe.name, "arch": spec.name, "clock_mhz": spec.clock_mhz, "layers": rows,
                   "totals": totals}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    _print_table(recipe.name, spec, rows, totals, format_energy)
    return 0


def _print_table(model: str, spec, rows: list[dict], totals: dict, format_energy) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"hwq cost: {model} on {spec.name} ({spec.array.rows}x{spec.array.cols}x{spec.array.lanes}, "
                    f"{spec.clock_mhz:g} MHz)", show_lines=False)
    for col, just in (("layer", "left"), ("kind", "left"), ("m x k x n", "right"), ("choice", "left"),
                      ("mapping", "left"), ("compute cyc", "right"), ("DRAM cyc", "right"), ("energy", "right"),
                      ("DRAM %", "right")):
        t.add_column(col, justify=just)
    for r in rows:
        g = f"/g{r['groups']}" if r["groups"] > 1 else (f" x{r['batch']}" if r["batch"] > 1 else "")
        dram_share = 100 * r["breakdown_pj"]["dram"] / r["energy_pj"] if r["energy_pj"] else 0.0
        t.add_row(r["name"], r["kind"], f"{r['m']}x{r['k']}x{r['n']}{g}", r["choice"], r["mapping"],
                  f"{r['compute_cycles']:,.0f}",
                  f"{r['dram_cycles']:,.0f}", format_energy(r["energy_pj"]), f"{dram_share:.0f}")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(t)
    parts = ", ".join(f"{k[:-3]} {format_energy(v)}" for k, v in totals.items()
                      if k.endswith("_pj") and k != "energy_pj")
    console.print(f"total energy {format_energy(totals['energy_pj'])} ({parts})")
    lat_s = totals["latency_s"]
    lat = f"{lat_s * 1e3:.3f} ms" if lat_s >= 1e-3 else f"{lat_s * 1e6:.3f} µs"
    console.print(f"total latency {totals['latency_cycles']:,.0f} cycles = {lat} "
                  f"(compute {totals['compute_cycles']:,.0f}, DRAM {totals['dram_cycles']:,.0f} cycles); "
                  f"weights {totals['weight_bits'] / 8e6:.2f} MB")
