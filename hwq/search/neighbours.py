"""When a budget cannot be met: the cheapest hardware change that would meet it.

:func:`suggest_change` evaluates the spec's neighbours, one change at a time, and returns the one
that meets the energy budget and is cheapest in hardware. When no single change meets it, it tries
every pair of changes of different kinds (a batch and a DRAM technology, say) and names the
cheapest pair in hardware that does, else the nearest miss. Changes, cheapest in hardware first:

1. a larger batch (2, 4, 8, 16): no new silicon, only latency and live activations;
2. partial sums elided on the first and last K tile: control logic only;
3. the ``accumulate_in_array`` dataflow (adds per-column accumulator register files, those of the
   ``bitmod_edge`` preset) when the spec lacks it;
4. another DRAM technology, from the cheapest part to the dearest: LPDDR4, LPDDR4X, LPDDR5, HBM2.

Within a rank the lowest-energy option wins. A pair is ranked by its dearer change, then its cheaper
one (a pair is always dearer than any single change). The cheapest plan of a neighbour is every weight
layer at its least-energy choice (weightless products at the highest choice, as in explore).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from hwq.dram import TECHNOLOGIES

if TYPE_CHECKING:  # pragma: no cover
    from hwq.spec import AcceleratorSpec
    from hwq.workload import Workload

BATCHES = (2, 4, 8, 16)
DRAM_ORDER = ("lpddr4", "lpddr4x", "lpddr5", "hbm2")
#: The preset whose accumulator register files change 3 adds (its figures are cited there).
ACCUMULATOR_PRESET = "bitmod_edge"


def cheapest_plan_pj(workload: "Workload", spec: "AcceleratorSpec", weight_names: Sequence[str],
                     batch: int) -> float:
    """Energy per image (pJ) of the all-cheapest plan of ``workload`` on ``spec`` at ``batch``."""
    from hwq.cost import evaluate
    from hwq.search.problem import split_layers

    choices = spec.choices()
    table = evaluate(workload, spec, choices, batch=batch)
    split = split_layers(table, weight_names, choices)
    return float(table.energy_pj[split.weight_rows].min(axis=1).sum() + split.fixed_energy_pj)


def _kind(rank: int) -> int:
    """The kind of change a rank belongs to: 0 batch, 1 partial sums, 2 dataflow, 3 DRAM technology."""
    return min(rank, 3)


def _neighbours(spec: "AcceleratorSpec", batch: int):
    """``(rank, description, spec, batch)`` for every single change (module docstring)."""
    from hwq.spec import DataflowSpec, DramSpec, load_spec

    for b in BATCHES:
        if b > batch:
            yield 0, f"--batch {b}", spec, b
    df = spec.dataflow
    if not df.elide_psums:
        yield 1, "partial_sums: elide_first_last", dataclasses.replace(
            spec, dataflow=DataflowSpec(df.modes, "elide_first_last")), batch
    if "accumulate_in_array" not in df.modes:
        acc = spec.accumulators or load_spec(ACCUMULATOR_PRESET).accumulators
        yield 2, f"dataflow accumulate_in_array ({acc.depth}-row accumulators)", dataclasses.replace(
            spec, dataflow=DataflowSpec(("accumulate_in_array",) + df.modes, df.partial_sums), accumulators=acc), batch
    start = DRAM_ORDER.index(spec.dram.technology) + 1 if spec.dram.technology in DRAM_ORDER else 0
    for tech in DRAM_ORDER[start:]:
        row = TECHNOLOGIES[tech]
        dram = DramSpec(max(spec.dram.bandwidth_gb_per_s, row.bandwidth_gb_per_s), row.energy_pj_per_bit, tech)
        yield 3 + DRAM_ORDER.index(tech), f"DRAM {tech} ({row.energy_pj_per_bit:.3g} pJ/bit)", \
            dataclasses.replace(spec, dram=dram), batch


def _pairs(spec: "AcceleratorSpec", batch: int):
    """``(hardware key, description, spec, batch)`` for every pair of changes of different kinds."""
    for r1, what1, s1, b1 in _neighbours(spec, batch):
        for r2, what2, s2, b2 in _neighbours(s1, b1):
            if _kind(r2) > _kind(r1):  # each unordered pair once, two changes of different kinds
                yield (max(r1, r2), min(r1, r2)), f"{what1} and {what2}", s2, b2


def suggest_change(workload: "Workload", spec: "AcceleratorSpec", weight_names: Sequence[str], budget_pj: float,
                   batch: int) -> str:
    """One clause naming the cheapest hardware change (or pair) that meets ``budget_pj``, else the nearest miss."""
    from hwq.search.units import format_si

    def search(candidates):
        best, nearest = None, None
        for key, what, s, b in candidates:
            e = cheapest_plan_pj(workload, s, weight_names, b)
            if e <= budget_pj and (best is None or (key, e) < best[:2]):
                best = (key, e, what)
            if nearest is None or e < nearest[0]:
                nearest = (e, what)
        return best, nearest

    best, nearest = search(_neighbours(spec, batch))
    if best is not None:
        return (f"the cheapest change in hardware that meets it: {best[2]}, where the cheapest plan is "
                f"{format_si(best[1] * 1e-12, 'J')}")
    if nearest is None:
        return "no neighbour of this spec to try"
    pair, pair_nearest = search(_pairs(spec, batch))
    if pair is not None:
        return (f"no single change meets it (the nearest is {nearest[1]} at {format_si(nearest[0] * 1e-12, 'J')}); "
                f"the cheapest pair of changes in hardware that does: {pair[2]}, where the cheapest plan is "
                f"{format_si(pair[1] * 1e-12, 'J')}")
    if pair_nearest is not None and pair_nearest[0] < nearest[0]:
        nearest = pair_nearest
    return (f"no single change or pair of changes (batch, partial sums, dataflow, DRAM technology) meets it; "
            f"the nearest is {nearest[1]} at {format_si(nearest[0] * 1e-12, 'J')}")
