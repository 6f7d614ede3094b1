"""``hwq sim`` on the streaming co-simulation path: a whole layer (``--scope layer``, the default on
Verilator) or a whole network (``--network digits_cnn``). See :mod:`hwq.verify.whole_layer`,
:mod:`hwq.verify.network`, :mod:`hwq.verify.stream`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable


NETWORKS = ("digits_cnn",)


def run_whole_layer(args: argparse.Namespace, print_check: Callable) -> int:
    """Every output of ``args.layer`` on the full array; prints like the tile check plus the run's figures."""
    from hwq.verify.whole_layer import check_whole_layers

    results = check_whole_layers(args.layer, args.arch, plan=args.plan, simulator=args.simulator,
                                 build_dir=args.build_dir, with_cost_model=not args.no_cost_model, batch=args.batch,
                                 dataflow=args.dataflow)
    ok = all(r.ok for r in results)
    if args.json:
        body = results[0].to_dict() if len(results) == 1 else {"ok": ok, "layers": [r.to_dict() for r in results]}
        json.dump(body, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0 if ok else 1
    for i, result in enumerate(results):
        if i:
            print()
        _print_whole(result, print_check)
    if len(results) > 1:
        print(f"\n{len(results)} layers under {args.layer}: {sum(r.ok for r in results)} bit-exact and cycle-exact")
    return 0 if ok else 1


def _print_whole(result, print_check: Callable) -> None:  # noqa: ANN001 - WholeLayerResult
    print_check(result.check)
    s = result.stream
    if "cost_model_equal" in s:
        print(f"whole layer cost model compute cycles {result.check.cost_model['compute_cycles']} vs measured "
              f"{result.check.measured_cycles}: {'MATCH' if s['cost_model_equal'] else 'MISMATCH'}")
    print(f"streaming  whole layer (every output) in one run: build {s['build_s']:.1f} s"
          f"{' (cached)' if s['build_cached'] else ''}, simulation {s['sim_s']:.2f} s for {s['sim_cycles']} cycles "
          f"(fills included) = {s['sim_cycles_per_s']:,} cycles/s")
    print(f"wall time  {s['wall_s']:.1f} s (quantize + lower {s['prepare_s']:.1f} s)")


def run_network(args: argparse.Namespace) -> int:
    """``hwq sim --network MODEL``: the whole network on the RTL, every test image (the arguments
    are checked by :func:`hwq.cli.sim_cmd.run`)."""
    from pathlib import Path

    from hwq.verify.network import markdown_report, run_digits_network

    say = (lambda _s: None) if args.json else (lambda s: print(s, flush=True))
    r = run_digits_network(args.arch, simulator=args.simulator, plan=args.plan, n_images=args.images,
                           build_dir=args.build_dir, progress=say)
    if args.report is not None:
        from hwq.atomic import write_text

        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.report, markdown_report(r))
    if args.json:
        json.dump(r.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0 if r.ok else 1
    print(f"network    {r.network} on {r.arch} ({r.simulator}), {r.images} test images")
    print(f"classes    RTL == golden model on {r.class_agreement}/{r.images} images; "
          f"GEMM outputs mismatching: {r.mismatches}")
    print(f"accuracy   RTL {r.rtl_accuracy:.4f}, golden {r.golden_accuracy:.4f}, fake-quant {r.fake_quant_accuracy:.4f}, "
          f"float {r.float_accuracy:.4f}")
    print(f"cycles     measured {r.measured_cycles}, hwq.timing {r.predicted_cycles}, hwq cost {r.cost_model_cycles} "
          f"({r.cost_model_cycles_per_image}/image): "
          f"{'MATCH' if r.measured_cycles == r.predicted_cycles == r.cost_model_cycles else 'MISMATCH'}")
    print("golden-model element-wise ops: " + "; ".join(r.elementwise_in_golden))
    print(f"wall time  {r.wall_s:.1f} s" + (f"; report {args.report}" if args.report else ""))
    return 0 if r.ok else 1
