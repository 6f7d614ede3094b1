"""``hwq cost``: per-layer latency and energy of a model on an accelerator at a precision plan."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "per-layer latency (cycles) and energy (pJ) of a model on an accelerator spec at a precision"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hwq cost``."""
    parser.add_argument("--model", required=True, help="model: a recipe name (models/registry.py, e.g. resnet50), torchvision:NAME, "
                        "path/to/file.py:build, package.module:build, a torch.export .pt2 file or a local "
                        "Hugging Face folder")
    from hwq.spec import DEFAULT_PRESET, PRESETS

    parser.add_argument("--arch", default=DEFAULT_PRESET, help=f"accelerator preset ({', '.join(PRESETS)}) "
                        f"or path to a spec YAML (default: {DEFAULT_PRESET})")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="images per weight load (default: the spec's batch); energy is per image, "
                             "latency per batch")
    parser.add_argument("--plan", help="plan.json with per-layer {name, format, bits, act_bits}")
    parser.add_argument("--format", dest="fmt", help="uniform weight format family (e.g. bitmod, int, fp, ant); default: the "
                        "accelerator's widest supported format (with --weights-bits: its first format of that width)")
    parser.add_argument("--weights-bits", type=int, help="uniform weight bits (default: the widest the accelerator "
                        "offers for --format)")
    parser.add_argument("--act-bits", type=int, help="activation bits (default: the accelerator's highest)")
    parser.add_argument("--json", action="store_true", help="print JSON (per-layer rows and totals) instead of a table")


def _uniform_choice(args, spec):
    from hwq.cost import Choice
    from hwq.datatypes import FORMAT_BITS
    from hwq.errors import UsageError

    act = args.act_bits if args.act_bits is not None else max(spec.arithmetic.act_bits)
    fmt = args.fmt
    bits = args.weights_bits
    offered = spec.arithmetic.weight_formats
    if fmt is not None and fmt not in FORMAT_BITS:
        raise UsageError(f"unknown weight format {fmt!r}; choose one of {', '.join(FORMAT_BITS)}")
    if fmt is None and bits is None:
        fmt, bits = max(offered, key=lambda fb: fb[1])
    elif bits is None:  # --format alone: its widest width on this accelerator
        widths = [b for f, b in offered if f == fmt]
        if not widths:
            raise UsageError(f"accelerator {spec.name!r} does not run format {fmt!r}; it runs "
                             f"{', '.join(f'{f}{b}' for f, b in offered)}")
        bits = max(widths)
    elif fmt is None:  # --weights-bits alone: the accelerator's first format at that width
        fmts = [f for f, b in offered if b == bits]
        if not fmts:
            raise UsageError(f"accelerator {spec.name!r} has no {bits}-bit weight format; it runs "
                             f"{', '.join(f'{f}{b}' for f, b in offered)}")
        fmt = fmts[0]
    if bits not in FORMAT_BITS[fmt]:
        raise UsageError(f"format {fmt!r} has no {bits}-bit variant; supported bits: "
                         f"{', '.join(map(str, FORMAT_BITS[fmt]))}")
    return Choice(fmt, bits, act)


def _read_plan(path: str) -> dict:
    from hwq.cli.validate import plan_file

    return plan_file(path, "--plan")


def run(args: argparse.Namespace) -> int:
    """Evaluate the cost model and print the table (or JSON)."""
    from hwq.cost import evaluate, evaluate_plan, format_energy, plan_choices
    from hwq.errors import UsageError
    from hwq.workload import capture

    from hwq.cli import validate as v

    if args.plan is not None and (args.fmt is not None or args.weights_bits is not None):
        raise UsageError("give either --plan or --format/--weights-bits, not both")
    if args.plan is not None and args.act_bits is not None:
        raise UsageError("--act-bits applies to a uniform precision; a --plan gives each layer its act_bits")
    recipe = v.model(args.model)
    spec = v.spec(args.arch)
    batch = spec.batch if args.batch is None else v.int_at_least(args.batch, "--batch", 1)
    plan = _read_plan(args.plan) if args.plan else None
    choice = None if plan is not None else _uniform_choice(args, spec)
    if choice is not None and not spec.supports(choice.fmt, choice.bits, choice.act_bits):
        fm = ", ".join(f"{f}{b}" for f, b in spec.arithmetic.weight_formats)
        raise UsageError(f"accelerator {spec.name!r} does not run {choice}: weight formats {fm}; act_bits "
                         f"{', '.join(map(str, spec.arithmetic.act_bits))}")
    workload = capture(recipe.build(), recipe.example_input())
    if plan is not None:
        per_layer = plan_choices(plan, workload, spec)
        table, cols = evaluate_plan(workload, spec, per_layer, batch=batch)
    else:
        table = evaluate(workload, spec, [choice], batch=batch)
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
                     "residency": table.residency_note(i, c),
                     "breakdown_pj": {k: float(v[i, c]) for k, v in table.breakdown_pj.items()}})
    if args.json:
        json.dump({"model": recipe.name, "arch": spec.name, "clock_mhz": spec.clock_mhz, "batch": batch,
                   "energy_per": "image", "latency_per": f"batch of {batch}", "layers": rows,
                   "totals": totals}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    _print_table(recipe.name, spec, rows, totals, format_energy, batch)
    return 0


def _print_table(model: str, spec, rows: list[dict], totals: dict, format_energy, batch: int = 1) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"hwq cost: {model} on {spec.name} ({spec.array.rows}x{spec.array.cols}x{spec.array.lanes}, "
                    f"{spec.clock_mhz:g} MHz, batch {batch})", show_lines=False)
    for col, just in (("layer", "left"), ("kind", "left"), ("m x k x n", "right"), ("choice", "left"),
                      ("mapping", "left"), ("activations", "left"), ("compute cyc", "right"), ("DRAM cyc", "right"), ("energy", "right"),
                      ("DRAM %", "right")):
        t.add_column(col, justify=just)
    for r in rows:
        g = f"/g{r['groups']}" if r["groups"] > 1 else (f" x{r['batch']}" if r["batch"] > 1 else "")
        dram_share = 100 * r["breakdown_pj"]["dram"] / r["energy_pj"] if r["energy_pj"] else 0.0
        t.add_row(r["name"], r["kind"], f"{r['m']}x{r['k']}x{r['n']}{g}", r["choice"], r["mapping"],
                  r["residency"], f"{r['compute_cycles']:,.0f}",
                  f"{r['dram_cycles']:,.0f}", format_energy(r["energy_pj"]), f"{dram_share:.0f}")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(t)
    parts = ", ".join(f"{k[:-3]} {format_energy(v)}" for k, v in totals.items()
                      if k.endswith("_pj") and k != "energy_pj")
    console.print(f"total energy per image {format_energy(totals['energy_pj'])} ({parts})")
    lat_s = totals["latency_s"]
    lat = f"{lat_s * 1e3:.3f} ms" if lat_s >= 1e-3 else f"{lat_s * 1e6:.3f} µs"
    console.print(f"total latency per batch of {batch} {totals['latency_cycles']:,.0f} cycles = {lat} "
                  f"(compute {totals['compute_cycles']:,.0f}, DRAM {totals['dram_cycles']:,.0f} cycles); "
                  f"weights {totals['weight_bits'] / 8e6:.2f} MB")
