"""Benchmark of ``hwq codesign`` at scale: points/s per worker count, Ray against the local pool.

On one Latin-hypercube sample of the ``edge_large`` space (ResNet-50 at 2 mJ), the ILP stage
(cost model + precision ILP per point) on the local process pool with 1 and 2 workers, on a
local Ray instance with 1 and 2 CPUs, and on a 2-node Ray cluster started on this machine with
``ray start`` (joined by address); the no-op task overhead of each; one Yosys synthesis of a
Pareto candidate's array; and the projection of a 10,000-point sweep with synthesis on 5 % of
the points on 64 cores (:mod:`hwq.codesign.scaling`, which also feeds ``reports/codesign.md``).

Run: ``.venv/bin/python benchmarks/bench_codesign.py [SAMPLES]`` (or ``hwq bench codesign``);
``--no-synth`` skips the synthesis (minutes on 2 cores) and the projection's synthesis term.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from hwq.codesign.scaling import measure, render

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    samples = int(args[0]) if args else 24
    m = measure(samples=samples, synth="--no-synth" not in sys.argv,
                log=lambda s: print(f"[bench codesign] {s}", file=sys.stderr, flush=True))
    print("\n".join(render(m)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
