"""Which precision a co-simulated layer runs at: its plan.json entry, else the arch's default choice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwq.errors import UsageError


@dataclass(frozen=True)
class LayerPrecisionChoice:
    """Weight format, activation bits and group size of one layer, and where they came from."""

    fmt: str
    bits: int
    act_bits: int
    group_size: int
    source: str  # "plan <path>" or "arch <name> default"

    def __str__(self) -> str:
        return f"{self.fmt}{self.bits}/a{self.act_bits} g{self.group_size}"


def _plan_entry(plan_path: Path, layer: str) -> dict[str, Any]:
    try:
        plan = json.loads(Path(plan_path).read_text())
    except FileNotFoundError:
        raise UsageError(f"plan file {plan_path} does not exist; give the plan.json that `hwq explore` wrote") from None
    except json.JSONDecodeError as err:
        raise UsageError(f"plan file {plan_path} is not JSON ({err.msg} at line {err.lineno})") from None
    layers = plan.get("layers") if isinstance(plan, dict) else None
    if not isinstance(layers, list):
        raise UsageError(f"plan file {plan_path} has no 'layers' list; give the plan.json that `hwq explore` wrote")
    for entry in layers:
        if isinstance(entry, dict) and entry.get("name") == layer:
            return entry
    names = [e.get("name") for e in layers if isinstance(e, dict)]
    raise UsageError(f"plan {plan_path} has no entry for layer {layer!r} ({len(names)} layers, e.g. "
                     f"{', '.join(map(str, names[:3]))})")


def resolve_precision(spec: Any, layer: str, plan_path: Path | None = None) -> LayerPrecisionChoice:
    """The layer's precision from ``plan_path`` (plan.json) when given, else the arch's default choice.

    The default choice is the arch's first listed weight format (``spec.choices()[0]``) with
    its widest activation precision, at the arch's group size. A plan entry must be supported by the arch.
    """
    group_size = spec.arithmetic.group_size
    if plan_path is not None:
        e = _plan_entry(plan_path, layer)
        try:
            fmt, bits = str(e["format"]), int(e["bits"])
            act_bits = int(e["act_bits"]) if e.get("act_bits") else max(spec.arithmetic.act_bits)
            # group_size None/0 in a plan means one group per output row (LayerPrecision semantics).
            group_size = int(e["group_size"] or 0) if "group_size" in e else group_size
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(f"plan entry for {layer!r} is malformed ({err}); "
                             "it needs format, bits, act_bits") from None
        if not spec.supports(fmt, bits, act_bits):
            raise UsageError(f"plan entry for {layer!r} asks for {fmt}{bits}/a{act_bits}, which arch {spec.name!r} "
                             f"does not support; use the plan made for this arch")
        return LayerPrecisionChoice(fmt, bits, act_bits, group_size, f"plan {plan_path}")
    choices = spec.choices()
    if not choices:
        raise UsageError(f"arch {spec.name!r} lists no weight formats; fix arithmetic.weight_formats")
    first = [c for c in choices if (c.fmt, c.bits) == (choices[0].fmt, choices[0].bits)]
    c = max(first, key=lambda ch: ch.act_bits)
    return LayerPrecisionChoice(c.fmt, c.bits, c.act_bits, group_size, f"arch {spec.name} default")


def fit_group_size(group_size: int, k: int) -> int:
    """Weights per group for a layer with row length ``k``: ``group_size`` if it divides ``k``.

    Otherwise the largest power of two below ``group_size`` that divides ``k`` (the array's
    tile depth is a power of two in every preset), else the largest divisor below it.
    ``group_size`` 0 (or >= k) means one group per row: returns ``k``.
    """
    if group_size <= 0 or group_size >= k:
        return k
    if k % group_size == 0:
        return group_size
    p = 1 << (group_size.bit_length() - 1)
    while p > 1 and k % p:
        p >>= 1
    if p >= 8:
        return p
    return next(g for g in range(group_size, 0, -1) if k % g == 0)
