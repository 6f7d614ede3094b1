"""HAWQ-V3-style integer linear program, solved with PuLP (CBC by default, HiGHS on request).

One binary ``x[u, c]`` per decision unit ``u`` (a layer, or a group of layers tied to one
choice, e.g. the convolutions feeding one residual add) and allowed choice ``c``;
``sum_c x[u, c] = 1``; minimise ``sum Omega_l(c) x`` subject to ``sum E_l(c) x <= energy
budget`` and, when given, latency (cycles) and weight-storage (bits) budgets.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from hwq.errors import UnsatisfiableError, UsageError
from hwq.search.problem import Problem

#: ``--solver`` names -> PuLP solver classes.
SOLVERS: tuple[str, ...] = ("cbc", "highs")


@dataclass
class Solution:
    """A plan found by a solver.

    Attributes:
        assignment: choice index per layer.
        objective: total sensitivity sum Omega (dimensionless).
        totals: sums of sensitivity, energy_pj, latency_cycles, weight_bits.
        status: PuLP status text ("Optimal", "Not Solved", ...) or "heuristic" for greedy.
        optimal: whether the solver proved optimality.
        solver: "cbc", "highs", "greedy", "uniform".
        solve_time_s: wall time of the solve, seconds.
    """

    assignment: list[int]
    objective: float
    totals: dict[str, float]
    status: str
    optimal: bool
    solver: str
    solve_time_s: float = 0.0
    extra: dict = field(default_factory=dict)


def _make_solver(name: str, time_limit_s: float | None):
    import pulp

    if name == "cbc":
        with warnings.catch_warnings():  # pulp 3.3 warns that the bundled CBC leaves in 4.0; we pin 3.3.2
            warnings.simplefilter("ignore", DeprecationWarning)
            return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s)
    raise UsageError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")


@contextlib.contextmanager
def _quiet_stdout(enabled: bool):
    """Silence file descriptor 1 (C-level prints) so ``--json`` output stays parseable."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded interpreter): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _solve_lp(problem: Problem, objective: str, solver: str, time_limit_s: float | None,
              skip_bound: str | None = None) -> tuple[list[int] | None, str, bool, float]:
    """Build and solve the ILP minimising ``objective`` (a Problem array name).

    Returns (assignment or None, status text, proven optimal, seconds). ``skip_bound`` drops
    one budget (used to find the cheapest plan that meets the other budgets).
    """
    import pulp

    units = problem.units()
    values = getattr(problem, objective)
    allowed_vals = values[problem.allowed]
    scale = float(np.max(np.abs(allowed_vals))) if allowed_vals.size else 1.0
    scale = scale if scale > 0 else 1.0

    lp = pulp.LpProblem("hwq_precision", pulp.LpMinimize)
    x: dict[tuple[int, int], pulp.LpVariable] = {}
    for u, g in enumerate(units):
        for c in np.flatnonzero(problem.allowed[g[0]]):
            x[u, int(c)] = lp.add_variable(f"x_{u}_{int(c)}", cat="Binary")
        lp += pulp.lpSum(x[u, c] for (uu, c) in x if uu == u) == 1, f"one_choice_{u}"

    def unit_sum(arr: np.ndarray, u: int, c: int) -> float:
        return float(arr[units[u], c].sum())

    lp += pulp.lpSum((unit_sum(values, u, c) / scale) * var for (u, c), var in x.items())
    for key, bound in (("energy_pj", problem.energy_budget_pj), ("latency_cycles", problem.latency_budget_cycles),
                       ("weight_bits", problem.size_budget_bits)):
        arr = getattr(problem, key)
        if bound is None or arr is None or key == skip_bound:
            continue
        # Normalise each row by its budget so CBC's absolute tolerances mean the same for pJ and bits.
        lp += pulp.lpSum((unit_sum(arr, u, c) / bound) * var for (u, c), var in x.items()) <= 1.0, f"budget_{key}"

    t0 = time.perf_counter()
    with _quiet_stdout(solver == "highs"):  # highspy prints a banner from C on the first Highs()
        lp.solve(_make_solver(solver, time_limit_s))
    seconds = time.perf_counter() - t0
    status = pulp.LpStatus[lp.status]
    optimal = lp.sol_status == pulp.LpSolutionOptimal
    if lp.status != pulp.LpStatusOptimal and lp.sol_status not in (pulp.LpSolutionOptimal,
                                                                   pulp.LpSolutionIntegerFeasible):
        return None, status, False, seconds
    assignment = [0] * len(problem.layer_names)
    for u, g in enumerate(units):
        picked = max((c for (uu, c) in x if uu == u), key=lambda c: x[u, c].varValue or 0.0)
        for i in g:
            assignment[i] = picked
    return assignment, status, optimal, seconds


def cheapest_energy_plan(problem: Problem, solver: str = "cbc",
                         time_limit_s: float | None = 60.0) -> list[int] | None:
    """The lowest-energy assignment meeting every budget except energy (None when none exists)."""
    if problem.latency_budget_cycles is None and problem.size_budget_bits is None:
        return problem.extreme_assignment("energy_pj")
    a, _, _, _ = _solve_lp(problem, "energy_pj", solver, time_limit_s, skip_bound="energy_pj")
    return a


def solve(problem: Problem, solver: str = "cbc", time_limit_s: float | None = 60.0) -> Solution:
    """Minimise total sensitivity under the problem's budgets.

    Raises :class:`UnsatisfiableError` naming the cheapest plan's cost when the budgets cannot
    all be met, and :class:`UsageError` for an unknown solver.
    """
    if solver not in SOLVERS:
        raise UsageError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    problem.check_bounds()
    assignment, status, optimal, seconds = _solve_lp(problem, "sensitivity", solver, time_limit_s)
    if assignment is None:
        cheapest = cheapest_energy_plan(problem, solver, time_limit_s)
        if cheapest is None:
            raise UnsatisfiableError("no plan meets the latency and model-size budgets together; relax one of them")
        cost = problem.totals(cheapest)["energy_pj"]
        raise UnsatisfiableError(
            f"no plan fits: the cheapest plan meeting the other budgets needs {problem.show('energy_pj', cost)}, "
            f"above the energy budget {problem.show('energy_pj', problem.energy_budget_pj or 0.0)} "
            f"(solver status: {status})")
    bad = problem.violations(assignment, rel_tol=1e-6)
    if bad:  # solver tolerance let something slip: say so rather than return a wrong plan
        raise UnsatisfiableError(f"solver {solver} returned a plan that breaks: {'; '.join(bad)}")
    totals = problem.totals(assignment)
    return Solution(assignment, totals["sensitivity"], totals, status, optimal, solver, seconds)
