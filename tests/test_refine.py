"""``hwq explore --refine``: top-K ILP plans by no-good cuts, local moves, measured selection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwq.search.problem import Problem
from hwq.search.refine import ilp_top_k, neighbours, refine


def _problem(seed: int = 0, layers: int = 4, choices: int = 3, frac: float = 0.5, ties=()) -> Problem:
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1, 10, (layers, choices))
    energy.sort(axis=1)
    sens = rng.uniform(0, 5, (layers, choices))
    sens = -np.sort(-sens, axis=1)  # more energy, less sensitivity
    p = Problem([f"l{i}" for i in range(layers)], [f"c{j}" for j in range(choices)], sens, energy,
                tie_groups=[list(t) for t in ties])
    lo, hi = energy.min(axis=1).sum(), energy.max(axis=1).sum()
    p.energy_budget_pj = lo + frac * (hi - lo)
    return p


def _all_feasible(p: Problem) -> list[tuple[float, list[int]]]:
    out = []
    for combo in itertools.product(range(len(p.choice_labels)), repeat=len(p.layer_names)):
        if not p.violations(combo):
            out.append((p.totals(combo)["sensitivity"], list(combo)))
    return sorted(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_are_the_k_best_feasible_plans(seed):
    p = _problem(seed)
    truth = _all_feasible(p)
    plans = ilp_top_k(p, 6)
    assert len(plans) == min(6, len(truth))
    assert len({tuple(a) for a in plans}) == len(plans)  # distinct
    got = [p.totals(a)["sensitivity"] for a in plans]
    np.testing.assert_allclose(got, [s for s, _ in truth[:len(plans)]], rtol=1e-6)
    assert all(not p.violations(a) for a in plans)


def test_top_k_respects_ties_and_stops_when_exhausted():
    p = _problem(3, layers=3, choices=2, frac=1.0, ties=[(0, 1)])
    plans = ilp_top_k(p, 50)
    assert len(plans) == 4  # 2 choices for the tied pair x 2 for the last layer
    assert all(a[0] == a[1] for a in plans)


def test_neighbours_are_feasible_one_step_and_ranked():
    p = _problem(4, layers=5, choices=4, frac=0.4)
    a = ilp_top_k(p, 1)[0]
    nb = neighbours(p, a, limit=20)
    assert nb and all(not p.violations(n) for n in nb)
    assert all(1 <= sum(x != y for x, y in zip(n, a)) <= 2 for n in nb)
    s = [p.totals(n)["sensitivity"] for n in nb]
    assert s == sorted(s)


def test_refine_keeps_best_measured_and_includes_baselines():
    p = _problem(5, layers=5, choices=4, frac=0.4)
    truth = _all_feasible(p)
    target = truth[len(truth) // 2][1]  # the "really best" plan is not the ILP's optimum
    score = lambda a: -float(np.abs(np.asarray(a) - np.asarray(target)).sum())  # noqa: E731
    r = refine(p, score, 3, extra=[("greedy", truth[-1][1]), ("uniform", None)], local_evals=40)
    origins = [c.origin for c in r.candidates]
    assert origins[:3] == ["ilp#1", "ilp#2", "ilp#3"] and "greedy" in origins
    assert r.score == max(c.score for c in r.candidates)
    assert r.score >= score(ilp_top_k(p, 1)[0]) and r.score >= score(truth[-1][1])
    assert any(o.startswith("local") for o in origins)
    assert r.score > max(c.score for c in r.candidates if not c.origin.startswith("local"))
    assert not p.violations(r.assignment)


def test_refine_on_digits_measures_at_least_ilp_greedy_uniform():
    """End to end on the digits CNN (cached sensitivity), with the real metric on calibration data."""
    from hwq.search.explore import ExploreRequest, explore

    res = explore(ExploreRequest(model="digits_cnn", budget_j=1.5e-6, budget_text="1.5uJ", pareto=0, write=False,
                                 refine=2))
    info = res.plan["refine"]
    scores = {o: c["score"] for c in info["candidates"] for o in [c["origin"], *c["also"]]}
    assert {"ilp#1", "greedy"} <= set(scores)
    assert info["score"] == max(scores.values())
    assert res.plan["solver"]["name"].endswith("+refine")
    assert not res.problem.violations([res.problem.choice_labels.index(l["choice"]) for l in res.plan["layers"]])


def test_cli_rejects_bad_refine(capsys):
    from hwq.cli.main import main

    assert main(["explore", "--model", "digits_cnn", "--budget", "1.5uJ", "--refine", "-1"]) == 2
    assert "--refine" in capsys.readouterr().err
