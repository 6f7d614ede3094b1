"""``hwq sim``: co-simulate one tile of a real layer on the array RTL against the golden model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwq.cli.validate import path_arg
from hwq.errors import UsageError

HELP = ("co-simulate a real layer (whole, or a tile) or a whole network on the array RTL: bit-exact vs the golden "
        "model, cycles vs the cost model")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="bitmod_edge",
                        help="accelerator preset name or spec YAML path (default: bitmod_edge, the default accelerator)")
    parser.add_argument("--layer", default=None, metavar="MODEL:LAYER",
                        help="model name and module qualified name, e.g. resnet50:layer2.0.conv2")
    parser.add_argument("--network", default=None, metavar="MODEL",
                        help="run a whole network on the RTL instead of one layer (supported: digits_cnn): every "
                             "GEMM on the array, element-wise ops in the golden model, all test images")
    parser.add_argument("--scope", choices=("auto", "layer", "tile"), default="auto",
                        help="what --layer co-simulates: 'layer' = every output of the whole layer (streaming "
                             "testbench, no Python in the loop), 'tile' = a tile under cocotb; auto (default): "
                             "the whole layer on Verilator, the tile on Icarus or when --rows is given")
    parser.add_argument("--images", type=int, default=None, metavar="N",
                        help="with --network: classify only the first N test images (default: all)")
    parser.add_argument("--report", type=Path, default=None, metavar="FILE",
                        help="with --network: write the Markdown report (RTL vs fake-quant accuracy) to FILE")
    parser.add_argument("--plan", type=path_arg, default=None,
                        help="plan.json from `hwq explore`: take the layer's precision from it "
                             "(default: the arch's first weight format at its widest activation bits)")
    parser.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    parser.add_argument("--rows", type=int, default=None, metavar="M",
                        help="activation rows (pixels/tokens) of each image in the tile (default: 4; with "
                             "accumulate_in_array enough that the batch's rows fill 1.5 accumulator depths)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="images whose rows make the tile; one weight load serves all N (default: the spec's batch)")
    parser.add_argument("--dataflow", choices=("output_buffer", "accumulate_in_array"), default=None,
                        help="loop nest the array runs (default: the spec's first dataflow mode)")
    parser.add_argument("--build-dir", type=path_arg, default=None,
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
          f"m={r.layer_gemm['m']} k={r.layer_gemm['k']} n={r.layer_gemm['n']} (batch {r.batch})")
    if r.tiling:
        g = r.tiling
        print(f"dataflow   {r.dataflow}: {g['m_tiles']} M tile(s) of {g['m_tile']} rows x {g['k_tiles']} K tiles x "
              f"{g['n_tiles']} N tiles, partial sums {'elided first/last' if r.psum_elide else 'read-modify-write'}")
    print(f"outputs    {verdict}: {r.outputs_compared - r.mismatches}/{r.outputs_compared} bit-exact "
          f"on {r.simulator}")
    if r.first_mismatch is not None:
        print(f"first mismatch: {r.first_mismatch}")
    print(f"cycles     predicted {r.predicted_cycles}, measured {r.measured_cycles}: "
          f"{'MATCH' if r.cycles_match else 'MISMATCH'}")
    if r.psum_accesses:
        (pr, pw), (mr, mw) = r.psum_accesses["predicted"], r.psum_accesses["measured"]
        print(f"psums      o_mem row reads/writes predicted {pr}/{pw} (hwq.timing), measured {mr}/{mw}: "
              f"{'MATCH' if r.psums_match else 'MISMATCH'}")
    if r.cost_model:
        c = r.cost_model
        if "compute_cycles" in c:
            mapping = f", mapping {c['mapping']}" if c.get("mapping") else ""
            print(f"cost model whole layer at batch {c.get('images', 1)} ({c['groups'] * c['batch']} GEMM(s), "
                  f"M tiles of {c['m_tile_rows']} rows{mapping}): "
                  f"compute cycles {c['compute_cycles']} (hwq.cost.evaluate) vs {c['timing_cycles']} "
                  f"(hwq.timing): {'MATCH' if r.cost_model_match else 'MISMATCH'}")
        else:
            print(f"cost model {c.get('note')}")


def run(args: argparse.Namespace) -> int:
    from hwq.cli import validate as v
    from hwq.verify.check import check_layer

    if (args.layer is None) == (args.network is None):
        raise UsageError("give exactly one of --layer MODEL:LAYER and --network MODEL")
    # Flags of the other mode are errors, not silently ignored (hwq/cli/validate.py: flags_apply).
    if args.layer is not None:
        v.flags_apply(args, ("images", "report"), "with --network")
    else:
        v.flags_apply(args, ("rows", "batch", "dataflow"), "with --layer")
        if args.scope != "auto":
            raise UsageError("--scope only applies with --layer (--network runs every layer)")
    v.spec(args.arch)  # shared input checks (hwq/cli/validate.py), before any model or simulator work
    if args.plan is not None:
        v.plan_file(args.plan, "--plan")
    if args.build_dir is not None:
        v.work_dir(args.build_dir, "--build-dir")
    if args.report is not None:
        v.output_file(args.report, "--report")
    v.int_at_least(args.images, "--images", 1)
    v.int_at_least(args.rows, "--rows", 1)
    v.int_at_least(args.batch, "--batch", 1)
    from hwq.paths import claimed_work_dir, scratch_dir

    if args.network is not None:
        from hwq.cli.sim_network import NETWORKS, run_network

        if args.network not in NETWORKS:
            raise UsageError(f"--network {args.network!r} is not supported; supported: {', '.join(NETWORKS)}")
        # The marker first (a rerun may use the folder again); a new folder is removed if the run fails.
        with claimed_work_dir(args.build_dir, "hwq sim"):
            return run_network(args)
    scope = args.scope
    if scope == "auto":
        scope = "layer" if args.simulator == "verilator" and args.rows is None else "tile"
    from hwq.verify.capture import parse_layer_ref

    v.model(parse_layer_ref(args.layer).model)
    with claimed_work_dir(args.build_dir, "hwq sim"):
        if scope == "layer":
            from hwq.cli.sim_network import run_whole_layer

            return run_whole_layer(args, _print_text)
        with scratch_dir("sim") as tmp:
            build = args.build_dir or Path(tmp) / f"build_{args.simulator}"
            result = check_layer(args.layer, args.arch, plan=args.plan, simulator=args.simulator, m_rows=args.rows,
                                 batch=args.batch, dataflow=args.dataflow,
                                 build_dir=build, with_cost_model=not args.no_cost_model)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(result)
    return 0 if result.ok else 1
