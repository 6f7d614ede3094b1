"""``hwq sim``: co-simulate one tile of a real layer on the array RTL against the golden model."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from hwq.errors import UsageError

HELP = "co-simulate a real layer's tile on the array RTL: bit-exact vs the golden model, cycles vs the cost model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="bitmod", help="accelerator preset name or spec YAML path (default: bitmod)")
    parser.add_argument("--layer", required=True, metavar="MODEL:LAYER",
                        help="model name and module qualified name, e.g. resnet50:layer2.0.conv2")
    parser.add_argument("--plan", type=Path, default=None,
                        help="plan.json from `hwq explore`: take the layer's precision from it "
                             "(default: the arch's first weight format at its widest activation bits)")
    parser.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    parser.add_argument("--rows", type=int, default=4, metavar="M",
                        help="activation rows (pixels/tokens) streamed through the tile (default: 4)")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="keep the generated Verilog and simulator build here (default: a temporary folder)")
    parser.add_argument("--no-cost-model", action="store_true",
                        help="skip the whole-layer hwq.cost.evaluate vs hwq.timing cross-check")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _print_text(r) -> None:  # noqa: ANN001 - LayerCheckResult
    a, t = r.array, r.tile
    verdict = "MATCH" if r.mismatches == 0 else "MISMATCH"
    print(f"layer      {r.layer}  ({r.precision}, from {r.precision_source})")
    print(f"arch       {r.arch}: {a['rows']}x{a['cols']} PEs x {a['lanes']} lanes, "
          f"{a['bits_per_cycle'] or 'bit-parallel'} bits/cycle, {a['term_slots']} term slots")
    print(f"tile       m={t['m']} k={t['k']} n={t['n']} of layer GEMM "
          f"m={r.layer_gemm['m']} k={r.layer_gemm['k']} n={r.layer_gemm['n']}")
    print(f"outputs    {verdict}: {r.outputs_compared - r.mismatches}/{r.outputs_compared} bit-exact "
          f"on {r.simulator}")
    if r.first_mismatch is not None:
        print(f"first mismatch: {r.first_mismatch}")
    print(f"cycles     predicted {r.predicted_cycles}, measured {r.measured_cycles}: "
          f"{'MATCH' if r.cycles_match else 'MISMATCH'}")
    if r.cost_model:
        c = r.cost_model
        if "compute_cycles" in c:
            print(f"cost model whole layer ({c['groups'] * c['batch']} GEMM(s), M tiles of {c['m_tile_rows']} rows): "
                  f"compute cycles {c['compute_cycles']} (hwq.cost.evaluate) vs {c['timing_cycles']} "
                  f"(hwq.timing): {'MATCH' if r.cost_model_match else 'MISMATCH'}")
        else:
            print(f"cost model {c.get('note')}")


def run(args: argparse.Namespace) -> int:
    from hwq.verify.check import check_layer

    if args.rows < 1:
        raise UsageError(f"--rows must be >= 1, got {args.rows}")
    with tempfile.TemporaryDirectory(prefix="hwq_sim_") as tmp:
        build = args.build_dir or Path(tmp) / f"build_{args.simulator}"
        result = check_layer(args.layer, args.arch, plan=args.plan, simulator=args.simulator, m_rows=args.rows,
                             build_dir=build, with_cost_model=not args.no_cost_model)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(result)
    return 0 if result.ok else 1
