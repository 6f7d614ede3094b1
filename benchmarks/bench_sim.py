"""Co-simulation speed of the generated PE array: cocotb vs streaming, Icarus vs Verilator (same run).

Run: ``.venv/bin/python benchmarks/bench_sim.py [--rows R --cols C --lanes L --m M --k K --n N --repeat R]``
(or ``hwq bench sim``). Generates the ``bitmod`` preset's PE array (all its weight formats) at a
small geometry and one random quantized layer, then runs it four ways, each built from nothing
in this run:

* cocotb-Icarus, cocotb-Verilator: ``sim/tb_array.py`` drives every cycle from Python (as the
  tile check of ``hwq sim``); Verilator built with ``OPT_FAST=-Os`` (the cocotb setting the
  issue recommends; the shipped ``hwq.cosim`` build is -O0 and slower). Rate = simulated cycles
  / cocotb's test time (build excluded).
* streaming-Icarus, streaming-Verilator (:mod:`hwq.verify.stream`): the layer's memory images
  loaded by a Verilog testbench, no Python in the loop; the layer runs ``--repeat`` times back to
  back in one simulator invocation (Icarus: ``--repeat-icarus``). Rate = simulated cycles (buffer
  fills, reset and runs) / wall time of the simulator process (start-up and ``$readmemh`` included).

Every run's outputs must equal ``hwq.golden`` and its cycles ``hwq.timing``; otherwise exit 1.
Prints cycles/s per path, build seconds, and the ratios (baseline: cocotb on the same simulator).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# cocotb's runner passes this process's sys.path to the simulator as PYTHONPATH: sim/ must be on it.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "sim")]

#: Clock period of the cocotb testbenches (sim/tb_common.py), ns.
CLOCK_PERIOD_NS = 10.0
#: Issue 13's targets for the streaming Verilator path.
TARGET_CYCLES_PER_S = 500_000
TARGET_RATIO = 10.0


def _test_time(results_xml: Path) -> tuple[float, float]:
    """(test wall seconds, simulated ns) of the single cocotb test in ``results_xml``."""
    case = next(ET.parse(results_xml).iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    return float(case.get("time")), float(props["sim_time_duration"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--cols", type=int, default=4)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--m", type=int, default=32, help="activation rows streamed per tile")
    parser.add_argument("--k", type=int, default=128, help="reduction length (multiple of the group size)")
    parser.add_argument("--n", type=int, default=32, help="output channels")
    parser.add_argument("--repeat", type=int, default=200, help="layer runs per streaming-Verilator invocation")
    parser.add_argument("--repeat-icarus", type=int, default=1, help="layer runs per streaming-Icarus invocation")
    args = parser.parse_args(argv)

    import math

    import numpy as np

    import hwq.cosim
    from hwq.hw.array_driver import expected_cycles, unpack_outputs
    from hwq.hw.array_sim import run_array_images
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.stimulus import random_layer
    from hwq.spec import load_spec
    from hwq.verify.stream import run_stream

    spec = load_spec("bitmod")
    tile_k = args.rows * args.lanes
    kt, nt = math.ceil(args.k / tile_k), math.ceil(args.n / args.cols)
    cfg = array_config_from_spec(spec, rows=args.rows, cols=args.cols, lanes=args.lanes,
                                 x_depth=max(64, kt * args.m), w_depth=max(64, kt * nt * args.rows),
                                 out_depth=max(32, args.m))
    fmt_index = cfg.formats.index(("bitmod", 4))
    image, expected = random_layer(cfg, args.m, args.k, args.n, fmt_index, seed=7,
                                   group_size=min(cfg.group_size, args.k))
    predicted = expected_cycles(cfg, image)
    print(f"array {cfg.rows}x{cfg.cols} PEs x {cfg.lanes} lanes, formats {len(cfg.formats)} "
          f"({', '.join(f'{f}{b}' for f, b in cfg.formats)}); layer M={args.m} K={args.k} N={args.n} bitmod4, "
          f"{predicted} array cycles predicted per run", flush=True)
    rates: dict[str, float] = {}
    ok = True
    # cocotb-Verilator at OPT_FAST=-Os (slow path -O0), as issue 13 recommends for the cocotb benches.
    hwq.cosim.VERILATOR_MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-Os OPT_SLOW=-O0 OPT_GLOBAL=-O0"
    with tempfile.TemporaryDirectory(prefix="hwq_bench_sim_") as tmp:
        for simulator in ("icarus", "verilator"):
            build = Path(tmp) / f"cocotb_{simulator}"
            t0 = time.perf_counter()
            [(words, cycles)] = run_array_images(cfg, [image], simulator=simulator, build_dir=build)
            total_s = time.perf_counter() - t0
            got = unpack_outputs(cfg, image, words)
            name = f"cocotb-{simulator}"
            if not np.array_equal(got, expected) or cycles != predicted:
                print(f"{name}: WRONG RESULT (outputs equal: {np.array_equal(got, expected)}, "
                      f"cycles {cycles} vs predicted {predicted})")
                ok = False
                continue
            test_s, sim_ns = _test_time(build / f"sim_{simulator}" / "results.xml")
            sim_cycles = sim_ns / CLOCK_PERIOD_NS
            rates[name] = sim_cycles / test_s
            print(f"{name:20s}: {sim_cycles:9.0f} cycles (fill + 1 run) in {test_s:8.3f} s -> "
                  f"{rates[name]:11,.0f} cycles/s; build + generate {total_s - test_s:6.1f} s; "
                  f"bit-exact, {cycles} cycles == predicted", flush=True)
        for simulator, repeat in (("icarus", args.repeat_icarus), ("verilator", args.repeat)):
            name = f"streaming-{simulator}"
            res = run_stream(cfg, [image] * repeat, simulator=simulator, build_dir=Path(tmp) / f"stream_{simulator}")
            bad = [i for i, r in enumerate(res.runs)
                   if r.cycles != predicted or not np.array_equal(unpack_outputs(cfg, image, r.out_words), expected)]
            if bad or len(res.runs) != repeat:
                print(f"{name}: WRONG RESULT in runs {bad[:5]} of {repeat}")
                ok = False
                continue
            rates[name] = res.cycles_per_s
            print(f"{name:20s}: {res.sim_cycles:9d} cycles (fills + {repeat} runs) in {res.sim_s:8.3f} s -> "
                  f"{rates[name]:11,.0f} cycles/s; build {res.build.build_s:6.1f} s; "
                  f"all {repeat} runs bit-exact, {predicted} cycles == predicted", flush=True)
    if not ok:
        return 1
    sv, cv = rates["streaming-verilator"], rates["cocotb-verilator"]
    print(f"ratio streaming/cocotb: Verilator {sv / cv:.1f}x, Icarus "
          f"{rates['streaming-icarus'] / rates['cocotb-icarus']:.1f}x; Verilator/Icarus: streaming "
          f"{sv / rates['streaming-icarus']:.0f}x, cocotb {cv / rates['cocotb-icarus']:.1f}x")
    print(f"target streaming-Verilator >= {TARGET_CYCLES_PER_S:,} cycles/s: {'met' if sv >= TARGET_CYCLES_PER_S else 'NOT met'}; "
          f">= {TARGET_RATIO:.0f}x cocotb-Verilator: {'met' if sv >= TARGET_RATIO * cv else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
