"""Pareto sweep: solve the ILP at N energy budgets between the cheapest and the most expensive plan."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from hwq.errors import UnsatisfiableError
from hwq.search.greedy import uniform
from hwq.search.ilp import solve
from hwq.search.problem import Problem


@dataclass
class ParetoPoint:
    """One point of the sensitivity/energy trade-off.

    Attributes:
        label: "ilp" or the choice label of a uniform plan.
        budget_pj: the energy budget solved for (None for uniform points), pJ.
        energy_pj: the plan's total energy, pJ.
        sensitivity: the plan's total Omega.
        assignment: choice index per layer.
    """

    label: str
    budget_pj: float | None
    energy_pj: float
    sensitivity: float
    assignment: list[int]


def energy_range(problem: Problem) -> tuple[float, float]:
    """(cheapest, most expensive) total energy over allowed plans, pJ (other budgets ignored)."""
    lo = problem.totals(problem.extreme_assignment("energy_pj"))["energy_pj"]
    hi = problem.totals(problem.extreme_assignment("energy_pj", largest=True))["energy_pj"]
    return lo, hi


def sweep(problem: Problem, n: int, solver: str = "cbc") -> list[ParetoPoint]:
    """ILP optima at ``n`` budgets spaced evenly from the cheapest to the most expensive plan."""
    lo, hi = energy_range(problem)
    points = []
    for budget in np.linspace(lo, hi, max(n, 2)):
        p = copy.copy(problem)
        p.energy_budget_pj = float(budget) * (1 + 1e-9)
        try:
            sol = solve(p, solver=solver)
        except UnsatisfiableError:
            continue  # another budget (latency, size) excludes this end of the range
        points.append(ParetoPoint("ilp", float(budget), sol.totals["energy_pj"], sol.objective, sol.assignment))
    return points


def uniform_points(problem: Problem) -> list[ParetoPoint]:
    """Every uniform-precision plan (one point per choice), whether or not it meets the budget."""
    out = []
    for c, label in enumerate(problem.choice_labels):
        a = uniform(problem, c)
        if a is None:
            continue
        t = problem.totals(a)
        out.append(ParetoPoint(label, None, t["energy_pj"], t["sensitivity"], a))
    return out
