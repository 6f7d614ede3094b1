"""The precision-allocation problem: per-layer, per-choice costs and the constraints on them.

Solvers (:mod:`hwq.search.ilp`, :mod:`hwq.search.greedy`) and brute force in the tests all
read this one description, so they answer exactly the same question.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from hwq.errors import UnsatisfiableError, UsageError


@dataclass
class Problem:
    """Choose one precision per layer.

    Attributes:
        layer_names: compute layers, in network order.
        choice_labels: label of every choice (column), e.g. ``"bitmod4/a8"``.
        sensitivity: ``[L, C]`` objective Omega_l(c) (dimensionless, lower is better).
        energy_pj: ``[L, C]`` energy per layer and choice, pJ.
        latency_cycles: ``[L, C]`` latency per layer and choice, cycles (optional).
        weight_bits: ``[L, C]`` weight storage incl. metadata, bits (optional).
        allowed: ``[L, C]`` bool mask of choices a layer may take (e.g. first/last at 8 bits).
        tie_groups: groups of layer indices that must take the same choice.
        energy_budget_pj / latency_budget_cycles / size_budget_bits: upper bounds (None: no bound).
        clock_mhz: accelerator clock, to show latency in seconds.
        offsets: fixed cost outside the decision (already taken off the budgets), shown in messages.
    """

    layer_names: list[str]
    choice_labels: list[str]
    sensitivity: np.ndarray
    energy_pj: np.ndarray
    latency_cycles: np.ndarray | None = None
    weight_bits: np.ndarray | None = None
    allowed: np.ndarray | None = None
    tie_groups: list[list[int]] = field(default_factory=list)
    energy_budget_pj: float | None = None
    latency_budget_cycles: float | None = None
    size_budget_bits: float | None = None
    clock_mhz: float | None = None
    #: plan-independent cost added to every total in messages (e.g. attention products), per metric key
    offsets: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (len(self.layer_names), len(self.choice_labels))
        self.sensitivity = np.asarray(self.sensitivity, dtype=float)
        self.energy_pj = np.asarray(self.energy_pj, dtype=float)
        for name in ("sensitivity", "energy_pj", "latency_cycles", "weight_bits"):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.asarray(arr, dtype=float)
            setattr(self, name, arr)
            if arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
        if self.allowed is None:
            self.allowed = np.ones(shape, dtype=bool)
        self.allowed = np.asarray(self.allowed, dtype=bool)
        self.tie_groups = [sorted(set(g)) for g in self.tie_groups if len(set(g)) > 1]
        self._merge_ties()

    # ------------------------------------------------------------------ structure
    def _merge_ties(self) -> None:
        """Merge overlapping tie groups and give every member the intersection of their allowed choices."""
        parent = list(range(len(self.layer_names)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for g in self.tie_groups:
            for j in g[1:]:
                parent[find(j)] = find(g[0])
        groups: dict[int, list[int]] = {}
        for i in range(len(self.layer_names)):
            groups.setdefault(find(i), []).append(i)
        self.tie_groups = [g for g in groups.values() if len(g) > 1]
        for g in self.tie_groups:
            common = self.allowed[g].all(axis=0)
            self.allowed[g] = common
        empty = [self.layer_names[i] for i in range(len(self.layer_names)) if not self.allowed[i].any()]
        if empty:
            raise UsageError(f"no precision choice is allowed for layer(s) {', '.join(empty[:5])}: "
                             "the keep-8-bit and tie options conflict with the accelerator's choices")

    def units(self) -> list[list[int]]:
        """Decision units: each tie group, and every untied layer on its own (layer indices)."""
        tied = {i for g in self.tie_groups for i in g}
        out = [list(g) for g in self.tie_groups]
        out += [[i] for i in range(len(self.layer_names)) if i not in tied]
        return sorted(out, key=lambda g: g[0])

    # ------------------------------------------------------------------ evaluation
    def totals(self, assignment: Sequence[int]) -> dict[str, float]:
        """Sums over layers for ``assignment[l] = choice index``: sensitivity, energy_pj, latency_cycles, weight_bits."""
        idx = np.arange(len(self.layer_names))
        a = np.asarray(assignment, dtype=int)
        out = {"sensitivity": float(self.sensitivity[idx, a].sum()),
               "energy_pj": float(self.energy_pj[idx, a].sum())}
        if self.latency_cycles is not None:
            out["latency_cycles"] = float(self.latency_cycles[idx, a].sum())
        if self.weight_bits is not None:
            out["weight_bits"] = float(self.weight_bits[idx, a].sum())
        return out

    def violations(self, assignment: Sequence[int], rel_tol: float = 1e-9) -> list[str]:
        """Human-readable list of the constraints ``assignment`` breaks (empty when feasible)."""
        a = list(assignment)
        bad = []
        for l, c in enumerate(a):
            if not self.allowed[l, c]:
                bad.append(f"layer {self.layer_names[l]} may not take {self.choice_labels[c]}")
        for g in self.tie_groups:
            if len({a[i] for i in g}) > 1:
                bad.append(f"tied layers {[self.layer_names[i] for i in g]} differ")
        t = self.totals(a)
        for key, bound in (("energy_pj", self.energy_budget_pj), ("latency_cycles", self.latency_budget_cycles),
                           ("weight_bits", self.size_budget_bits)):
            if bound is not None and key in t and t[key] > bound * (1 + rel_tol) + 1e-9:
                bad.append(f"{key} {t[key]:.6g} > budget {bound:.6g}")
        return bad

    def brute_force(self) -> tuple[list[int], float] | None:
        """Exhaustive optimum (assignment, objective) or None when infeasible; for tests on tiny instances."""
        units = self.units()
        options = [np.flatnonzero(self.allowed[g[0]]) for g in units]
        best: tuple[list[int], float] | None = None
        for combo in itertools.product(*options):
            a = [0] * len(self.layer_names)
            for g, c in zip(units, combo):
                for i in g:
                    a[i] = int(c)
            if self.violations(a):
                continue
            obj = self.totals(a)["sensitivity"]
            if best is None or obj < best[1]:
                best = (a, obj)
        return best

    # ------------------------------------------------------------------ bounds
    def extreme_assignment(self, metric: str, largest: bool = False) -> list[int]:
        """Per decision unit, the allowed choice with the smallest (or largest) summed ``metric``.

        With ``metric="energy_pj"`` this is the cheapest (most expensive) plan, ignoring the other
        constraints; ties inside a unit break toward lower sensitivity.
        """
        values = getattr(self, metric)
        a = [0] * len(self.layer_names)
        for g in self.units():
            cost = values[g].sum(axis=0)
            sens = self.sensitivity[g].sum(axis=0)
            cand = np.flatnonzero(self.allowed[g[0]])
            key = sorted(cand, key=lambda c: ((-cost[c] if largest else cost[c]), sens[c]))
            for i in g:
                a[i] = int(key[0])
        return a

    def check_bounds(self) -> None:
        """Raise :class:`UnsatisfiableError` when a budget is below the cheapest plan for that metric alone."""
        for key, bound, label in (("energy_pj", self.energy_budget_pj, "energy"),
                                  ("latency_cycles", self.latency_budget_cycles, "latency"),
                                  ("weight_bits", self.size_budget_bits, "model size")):
            if bound is None or getattr(self, key) is None:
                continue
            cheapest = self.extreme_assignment(key)
            value = self.totals(cheapest)[key]
            if value > bound * (1 + 1e-9):
                raise UnsatisfiableError(
                    f"{label} budget {self.show(key, bound)} is below the cheapest plan's {label} "
                    f"{self.show(key, value)}; raise the budget to at least that")

    def show(self, key: str, value: float) -> str:
        """Format a total of ``key`` in user units: J for energy, s (and cycles) for latency, MB for size."""
        from hwq.search.units import format_si

        value = value + self.offsets.get(key, 0.0)
        if key == "energy_pj":
            return format_si(value * 1e-12, "J")
        if key == "weight_bits":
            return f"{value / 8e6:.4g}MB"
        if key == "latency_cycles" and self.clock_mhz:
            return f"{format_si(value / (self.clock_mhz * 1e6), 's')} ({value:.6g} cycles)"
        return f"{value:.6g}"


# ---------------------------------------------------------------------------------------
# Building a problem from a model, its workload and a cost table (hwq explore and codesign)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSplit:
    """Which cost-table rows the ILP decides, and the constant cost of the others.

    Products without a module weight (attention's activation x activation matmuls) are not
    quantized by a plan; they run at the highest-precision choice ``fixed_choice`` and add
    ``fixed_energy_pj`` (pJ) and ``fixed_latency_cycles`` (cycles) to every plan.
    """

    weight_rows: list[int]
    fixed_rows: list[int]
    fixed_choice: int
    fixed_energy_pj: float
    fixed_latency_cycles: float


def weight_layer_names(model, workload) -> list[str]:
    """Compute layers whose stationary operand is a module weight (the layers a plan quantizes)."""
    modules = dict(model.named_modules())
    return [l.name for l in workload.layers if l.has_weights and l.name in modules
            and getattr(modules[l.name], "weight", None) is not None]


def split_layers(table, weight_names: Sequence[str], choices: Sequence) -> LayerSplit:
    """Split the rows of cost table ``table`` into the ILP's layers and the fixed ones."""
    row = {name: i for i, name in enumerate(table.layer_names)}
    weight_rows = [row[n] for n in weight_names]
    wanted = set(weight_names)
    fixed_rows = [i for i, name in enumerate(table.layer_names) if name not in wanted]
    hi = int(np.argmax([(c.bits, c.act_bits or 0) for c in choices]))
    return LayerSplit(weight_rows, fixed_rows, hi,
                      float(sum(table.energy_pj[i, hi] for i in fixed_rows)),
                      float(sum(table.latency_cycles[i, hi] for i in fixed_rows)))


def keep_first_last_mask(choices: Sequence) -> np.ndarray:
    """Choices a first/last layer may take under keep-first-last-8bit: 8-bit weights (else the
    widest) at their widest activations, as HAWQ-V3 does."""
    top_bits = 8 if any(c.bits == 8 for c in choices) else max(c.bits for c in choices)
    top_act = max((c.act_bits or 0) for c in choices if c.bits == top_bits)
    return np.array([c.bits == top_bits and (c.act_bits or 0) == top_act for c in choices])


def residual_tie_groups(workload, weight_names: Sequence[str]) -> list[list[int]]:
    """Indices (into ``weight_names``) of layers feeding the same residual add, as tie groups."""
    pos = {name: i for i, name in enumerate(weight_names)}
    ties = []
    for group in workload.residual_groups:
        members = [pos[g] for g in group if g in pos]
        if len(members) > 1:
            ties.append(members)
    return ties
