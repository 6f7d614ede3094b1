"""Co-simulation speed of the generated PE array: Verilator vs Icarus (baseline, same run).

Run: ``.venv/bin/python benchmarks/bench_sim.py [--rows R --cols C --lanes L --m M --k K --n N]``
(or ``hwq bench sim``). Generates the ``bitmod`` preset's PE array (all its weight formats)
at a small geometry, runs one random quantized layer through ``sim/tb_array.py`` on each
simulator (the cocotb testbench drives every cycle from Python, as in ``hwq sim``), checks
the outputs against ``hwq.golden`` and the cycles against ``hwq.timing``, and prints
simulated clock cycles per second of test time (from cocotb's results file: build excluded)
and the Verilator/Icarus ratio. Build times are printed separately.
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
    args = parser.parse_args(argv)

    import math

    import numpy as np

    from hwq.hw.array_sim import run_array_images
    from hwq.hw.config import array_config_from_spec
    from hwq.hw.stimulus import random_layer
    from hwq.spec import load_spec
    from hwq.timing import layer_compute_cycles

    spec = load_spec("bitmod")
    tile_k = args.rows * args.lanes
    kt, nt = math.ceil(args.k / tile_k), math.ceil(args.n / args.cols)
    cfg = array_config_from_spec(spec, rows=args.rows, cols=args.cols, lanes=args.lanes,
                                 x_depth=max(64, kt * args.m), w_depth=max(64, kt * nt * args.rows),
                                 out_depth=max(32, args.m))
    fmt_index = cfg.formats.index(("bitmod", 4))
    image, expected = random_layer(cfg, args.m, args.k, args.n, fmt_index, seed=7,
                                   group_size=min(cfg.group_size, args.k))
    predicted = layer_compute_cycles(args.m, args.k, args.n, rows=cfg.rows, cols=cfg.cols, lanes=cfg.lanes,
                                     term_slots=cfg.term_slots(fmt_index), bits_per_cycle=cfg.bpc)
    from hwq.hw.array_driver import unpack_outputs

    print(f"array {cfg.rows}x{cfg.cols} PEs x {cfg.lanes} lanes, formats {len(cfg.formats)} "
          f"({', '.join(f'{f}{b}' for f, b in cfg.formats)}); layer M={args.m} K={args.k} N={args.n} bitmod4, "
          f"{predicted} array cycles predicted", flush=True)
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hwq_bench_sim_") as tmp:
        for simulator in ("icarus", "verilator"):
            build = Path(tmp) / simulator
            t0 = time.perf_counter()
            [(words, cycles)] = run_array_images(cfg, [image], simulator=simulator, build_dir=build)
            total_s = time.perf_counter() - t0
            got = unpack_outputs(cfg, image, words)
            if not np.array_equal(got, expected) or cycles != predicted:
                print(f"{simulator}: WRONG RESULT (outputs equal: {np.array_equal(got, expected)}, "
                      f"cycles {cycles} vs predicted {predicted})")
                return 1
            test_s, sim_ns = _test_time(build / f"sim_{simulator}" / "results.xml")
            sim_cycles = sim_ns / CLOCK_PERIOD_NS
            rates[simulator] = sim_cycles / test_s
            print(f"{simulator:9s}: {sim_cycles:8.0f} cycles simulated (buffer fill + run) in {test_s:7.3f} s "
                  f"-> {rates[simulator]:9.0f} cycles/s; build + generate {total_s - test_s:6.2f} s; "
                  f"outputs bit-exact, {cycles} cycles measured == predicted", flush=True)
    print(f"ratio Verilator/Icarus: {rates['verilator'] / rates['icarus']:.2f}x simulated cycles per second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
