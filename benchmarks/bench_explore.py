"""Benchmark of ``hwq explore``: the README's default command cold vs warm, and the ILP solve.

1. ``hwq explore --model resnet50 --budget 2mJ`` twice in fresh processes with an empty
   sensitivity cache: the first run is cold (Hessian traces, weight errors), the second warm
   (cache hit). Reported: both wall times and the warm/cold ratio.
2. ILP solve time for ResNet-50 with every precision choice of the bitmod preset (the problem
   of the run above), CBC and HiGHS, against the greedy baseline on the same problem.

Run: ``.venv/bin/python benchmarks/bench_explore.py [BUDGET]`` (or ``hwq bench explore``). When
the budget is below the cheapest plan of the current cost model (exit 1, before any
sensitivity work), the benchmark says so and times 1.3x the cheapest plan's energy instead.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CPU: list[float] = []  # CPU seconds (user + system) of each CLI run, in order


def _run_cli(cache: str, out: str, budget: str) -> tuple[float, int, str]:
    """Wall time, exit code and stderr of ``hwq explore --model resnet50 --budget BUDGET`` in a fresh process."""
    env = {**os.environ, "HWQ_CACHE_DIR": cache}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hwq", "explore", "--model", "resnet50", "--budget", budget,
                           "--out", out], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    _CPU.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    return wall, proc.returncode, proc.stderr


def _feasible_budget(stderr: str) -> str:
    """1.3x the cheapest plan's energy named in an exit-1 message."""
    import re

    from hwq.search.units import format_si, parse_energy

    m = re.search(r"cheapest plan's energy (\S+?);", stderr)
    if not m:
        raise RuntimeError(f"explore failed: {stderr.strip()}")
    return format_si(parse_energy(m.group(1)) * 1.3, "J")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    budget = sys.argv[1] if len(sys.argv) > 1 else "2mJ"
    with tempfile.TemporaryDirectory() as tmp:
        cold, rc, err = _run_cli(tmp, os.path.join(tmp, "r1"), budget)
        if rc == 1:  # budget below the cheapest plan: it failed before the sensitivity, time a feasible one
            fallback = _feasible_budget(err)
            print(f"--budget {budget} is infeasible on this cost model ({err.strip().splitlines()[-1]}); "
                  f"timing --budget {fallback} instead")
            budget = fallback
            cold, rc, err = _run_cli(tmp, os.path.join(tmp, "r1"), budget)
        if rc:
            raise RuntimeError(err)
        warm, rc, err = _run_cli(tmp, os.path.join(tmp, "r2"), budget)
        cpus = len(os.sched_getaffinity(0))
        print(f"hwq explore --model resnet50 --budget {budget} ({cpus} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}): cold {cold:.1f} s wall / {_CPU[-2]:.1f} s CPU, warm {warm:.1f} s wall / "
              f"{_CPU[-1]:.1f} s CPU, warm/cold = {warm / cold:.3f}")

        os.environ["HWQ_CACHE_DIR"] = tmp
        from hwq.search.explore import ExploreRequest, explore
        from hwq.search.greedy import greedy
        from hwq.search.ilp import solve

        from hwq.search.units import parse_energy

        res = explore(ExploreRequest(model="resnet50", budget_j=parse_energy(budget), budget_text=budget, pareto=0,
                                     write=False))
        p = res.problem
        print(f"ILP size: {len(p.layer_names)} layers x {len(p.choice_labels)} choices = "
              f"{int(p.allowed.sum())} binaries")
        times = {}
        for name, fn in (("greedy", lambda: greedy(p)), ("cbc", lambda: solve(p, "cbc")),
                         ("highs", lambda: solve(p, "highs"))):
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                sol = fn()
                ts.append(time.perf_counter() - t0)
            times[name] = statistics.median(ts)
            print(f"{name:7s} median {times[name] * 1e3:8.1f} ms  objective {sol.objective:.6g}  "
                  f"status {sol.status}")
        print(f"cbc/greedy = {times['cbc'] / times['greedy']:.1f}x, highs/greedy = {times['highs'] / times['greedy']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
