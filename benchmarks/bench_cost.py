"""Speed of the vectorised cost model: (layer x choice) evaluations per second on ResNet-50.

Run: ``.venv/bin/python benchmarks/bench_cost.py [--repeats N]``. Evaluates all 54 layers of
ResNet-50 at every choice of the default preset (``bitmod``: 18 choices) with one
``hwq.cost.evaluate`` call, and, as the baseline in the same run, with a naive Python loop
that calls ``evaluate`` once per (layer, choice). Both include the per-layer mapper (three loop
nests per (layer, choice), ``hwq.cost.MAPPINGS``). Prints the best-of-N rates and their ratio,
and checks that both give the same energies, latencies and chosen mappings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each method (best is kept)")
    args = parser.parse_args(argv)
    import numpy as np

    from hwq.cost import evaluate
    from hwq.spec import load_spec
    from hwq.workload import Workload, capture
    from models.registry import get_recipe

    recipe = get_recipe("resnet50")
    wl = capture(recipe.build("random"), recipe.example_input())
    spec = load_spec("bitmod")
    choices = spec.choices()
    n_eval = len(wl.layers) * len(choices)

    def vectorised():
        return evaluate(wl, spec, choices)

    singles = [Workload([layer], [], []) for layer in wl.layers]

    def naive():
        e = np.empty((len(wl.layers), len(choices)))
        lat = np.empty_like(e)
        mp = np.empty(e.shape, dtype=int)
        for i, one in enumerate(singles):
            for j, c in enumerate(choices):
                t = evaluate(one, spec, [c])
                e[i, j], lat[i, j], mp[i, j] = t.energy_pj[0, 0], t.latency_cycles[0, 0], t.mapping[0, 0]
        return e, lat, mp

    ref = vectorised()
    e, lat, mp = naive()
    if not (np.allclose(ref.energy_pj, e, rtol=1e-12) and np.array_equal(ref.latency_cycles, lat)
            and np.array_equal(ref.mapping, mp)):
        print("MISMATCH between vectorised and per-(layer, choice) evaluation", file=sys.stderr)
        return 1
    best = {"vectorised": float("inf"), "naive loop": float("inf")}
    for _ in range(args.repeats):
        for name, fn in (("vectorised", vectorised), ("naive loop", naive)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"ResNet-50: {len(wl.layers)} layers x {len(choices)} choices of '{spec.name}' = {n_eval} evaluations")
    for name, sec in best.items():
        print(f"  {name:11s} {sec * 1e3:9.2f} ms   {n_eval / sec:12,.0f} (layer x choice)/s")
    print(f"  speed-up of one vectorised call over the per-(layer, choice) loop: "
          f"{best['naive loop'] / best['vectorised']:.1f}x (identical results)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
