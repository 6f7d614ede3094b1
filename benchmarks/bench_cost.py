"""Speed of the cost model: (layer x choice) evaluations per second on ResNet-50, now vs before.

Run: ``.venv/bin/python benchmarks/bench_cost.py [--repeats N]`` (or ``hwq bench cost``).
Evaluates all 54 layers of ResNet-50 at every choice of the ``bitmod`` preset (18 choices) with
one ``hwq.cost.evaluate`` call, and, as the baseline in the same run, with the cost model of
git commit ``hwq.reports.baseline_cost.BASELINE_COMMIT`` (before liveness residency, element-wise
work, the accumulate dataflow and batch). Prints best-of-N rates and the slow-down ratio, which
issue 11 caps at 2x; also the rate of the default preset ``bitmod_edge`` (two dataflows, five
loop nests). Exit 1 if the new model is more than 2x slower.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAX_SLOWDOWN = 2.0


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed repetitions of each method (best is kept)")
    args = parser.parse_args(argv)

    from hwq.cost import evaluate
    from hwq.reports.baseline_cost import BASELINE_COMMIT, load_baseline_cost
    from hwq.spec import load_spec
    from hwq.workload import capture
    from models.registry import get_recipe

    recipe = get_recipe("resnet50")
    wl = capture(recipe.build("random"), recipe.example_input())
    spec, edge = load_spec("bitmod"), load_spec("bitmod_edge")
    choices = spec.choices()
    n_eval = len(wl.layers) * len(choices)
    old = load_baseline_cost()
    rates = {
        f"before ({BASELINE_COMMIT}), bitmod": _best(lambda: old.evaluate(wl, spec, choices), args.repeats),
        "now, bitmod": _best(lambda: evaluate(wl, spec, choices), args.repeats),
        "now, bitmod_edge": _best(lambda: evaluate(wl, edge, edge.choices()), args.repeats),
    }
    print(f"ResNet-50: {len(wl.layers)} layers x {len(choices)} choices = {n_eval} evaluations per call")
    for name, sec in rates.items():
        print(f"  {name:28s} {sec * 1e3:9.2f} ms   {n_eval / sec:12,.0f} (layer x choice)/s")
    before, now = rates[f"before ({BASELINE_COMMIT}), bitmod"], rates["now, bitmod"]
    ratio = now / before
    print(f"  slow-down of the new model on the same preset, same run: {ratio:.2f}x (limit {MAX_SLOWDOWN:g}x)")
    return 0 if ratio <= MAX_SLOWDOWN else 1


if __name__ == "__main__":
    raise SystemExit(main())
