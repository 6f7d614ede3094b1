"""Plan sampling and rank correlation for the proxy check (reports/explore.md)."""

from __future__ import annotations

import numpy as np

from hwq.search.problem import Problem
from hwq.search.proxy import sample_plans, spearman


def _problem() -> Problem:
    rng = np.random.default_rng(0)
    energy = np.sort(rng.uniform(1, 10, (8, 4)), axis=1)
    allowed = np.ones((8, 4), dtype=bool)
    allowed[0, 3] = False
    return Problem([f"l{i}" for i in range(8)], [f"c{j}" for j in range(4)], rng.uniform(0, 1, (8, 4)), energy,
                   allowed=allowed, tie_groups=[[2, 3]])


def test_sample_plans_are_distinct_allowed_and_spread():
    p = _problem()
    plans = sample_plans(p, 50)
    assert len(plans) == 50 and len({tuple(a) for a in plans}) == 50
    assert all(not p.violations(a) for a in plans)  # no budget set: only allowed choices and ties
    e = np.array([p.totals(a)["energy_pj"] for a in plans])
    lo = p.energy_pj.min(axis=1).sum()
    hi = sum(p.energy_pj[l, p.allowed[l]].max() for l in range(8))
    assert e.min() < lo + 0.15 * (hi - lo) and e.max() > lo + 0.8 * (hi - lo)
    assert sample_plans(p, 50) == plans  # deterministic


def test_spearman():
    r, pv = spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 100])
    assert abs(r - 1.0) < 1e-12 and pv < 0.05
    assert abs(spearman([1, 2, 3, 4], [4, 3, 2, 1])[0] + 1.0) < 1e-12
