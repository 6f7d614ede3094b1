"""Which activation tensors stay in the on-chip activation buffer: fusion, liveness and spills.

The cost model (:mod:`hwq.cost`) asks two questions of a workload's dataflow: which ops run as
their own pass over memory, and which tensors stay on chip between their producer and their
last consumer. This module answers both; it knows nothing about energy.

Fusion
------
A single-input point-wise op (BatchNorm, ReLU and friends, GELU, a multiply by a constant...)
whose input tensor has no other consumer is fused into the requantizer of the op that produced
that tensor: it adds no memory pass and no tensor. Every other element-wise op (residual add,
pooling, softmax, layer norm, embedding lookup) is a *vector op*: it reads its input tensors and
writes its output tensor. GEMM layers and vector ops together are the *steps* of the schedule,
in execution order (``Workload.order``).

Liveness and residency
----------------------
A tensor is live from the step that produces it to its last consumer (the network output, and a
tensor with no consumer, only at its producer). At a step the live set is every tensor live
there, the skip tensor of a residual block included. Tensors are resident (never leave the
chip) unless a spill is needed: walking the steps in order, wherever the resident live set's
bits exceed the activation buffer capacity, the resident tensor the step does not touch whose
next use is furthest away (Belady) is spilled, else the largest one the step touches, until the
set fits. A spilled tensor is written to DRAM once by its producer and read from DRAM by each
consumer. The model input is always read from DRAM, by each of its consumers; the network's
outputs are written to DRAM. Sizes are ``elems * act_bits``, at one activation width for the
whole network (the width of the precision choice being costed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from hwq.workload import Workload

#: Element-wise kinds that fuse into the producer's requantizer when they are its only consumer.
FUSABLE_KINDS = frozenset({
    "batchnorm1d", "batchnorm2d", "batchnorm3d", "relu", "relu6", "relu_", "leakyrelu", "leaky_relu", "elu",
    "gelu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "mish", "dropout", "identity",
    "mul", "truediv", "div", "sub", "add", "neg", "clamp", "hardtanh", "float", "to",
})

#: Element operations per output element, by vector-op kind (one op = one add, compare, or
#: multiply by a constant); pooling uses its window instead, reductions their input size.
OPS_PER_ELEMENT = {"softmax": 3, "layernorm": 4, "layer_norm": 4, "groupnorm": 4, "embedding": 0}
#: Kinds whose work is one op per *input* element (global pooling, reductions).
REDUCTION_KINDS = frozenset({"adaptiveavgpool1d", "adaptiveavgpool2d", "adaptivemaxpool2d", "mean", "sum",
                             "amax", "max"})
#: Kinds that read a table from DRAM (their output rows), not an on-chip tensor.
LOOKUP_KINDS = frozenset({"embedding"})

MODEL_INPUT = "input"


@dataclass
class Tensor:
    """One materialised activation tensor: ``elems`` elements, made at step ``start``."""

    name: str
    elems: int
    start: int
    uses: list[int] = field(default_factory=list)
    network_output: bool = False

    @property
    def end(self) -> int:
        """Last step at which the tensor is live."""
        return max([self.start] + self.uses)


@dataclass
class Step:
    """One pass over memory: a GEMM layer or a vector op; tensors by name."""

    name: str
    is_layer: bool
    inputs: list[str]
    output: str
    kind: str = ""
    ops: int = 0
    lookup_elems: int = 0


@dataclass
class Schedule:
    """Steps in execution order, the tensors they pass, and which layer each vector op is billed to."""

    steps: list[Step]
    tensors: dict[str, Tensor]
    fused: dict[str, str]
    billed_to: dict[str, str]

    def step_index(self, name: str) -> int:
        for i, s in enumerate(self.steps):
            if s.name == name:
                return i
        raise KeyError(name)


@dataclass(frozen=True)
class Residency:
    """Outcome at one activation width: ``resident[tensor]`` and, per step, free buffer bits."""

    resident: dict[str, bool]
    free_bits: list[float]
    spilled: tuple[str, ...]


def _ops(kind: str, elems: int, in_elems: int, window: int) -> int:
    if kind in REDUCTION_KINDS:
        return in_elems
    if window > 1:
        return elems * window
    return elems * OPS_PER_ELEMENT.get(kind, 1)


def build_schedule(workload: "Workload") -> Schedule:
    """Fuse point-wise ops, order the steps, and find every tensor's producer and consumers.

    A workload without dataflow information (no ``order``/``edges``, e.g. built by hand) is
    read as a chain: each layer reads the model input and writes a network output.
    """
    layers = {l.name: l for l in workload.layers}
    ew = {e.name: e for e in workload.elementwise}
    order = [n for n in workload.order if n in layers or n in ew]
    if not order or not workload.edges:
        steps = [Step(l.name, True, [MODEL_INPUT], l.name) for l in workload.layers]
        tensors = {MODEL_INPUT: Tensor(MODEL_INPUT, workload.input_elems, -1, list(range(len(steps))))}
        for i, l in enumerate(workload.layers):
            tensors[l.name] = Tensor(l.name, l.out_elems, i, [], True)
        return Schedule(steps, tensors, {}, {})
    srcs: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for p, c in workload.edges:
        srcs.setdefault(c, []).append(p)
        consumers.setdefault(p, []).append(c)
    alias: dict[str, str] = {MODEL_INPUT: MODEL_INPUT}   # op name -> the tensor its output is
    head: dict[str, str] = {}                            # tensor -> last op fused into it
    fused: dict[str, str] = {}
    steps: list[Step] = []
    for name in order:
        ins = list(dict.fromkeys(alias[p] for p in srcs.get(name, []) if p in alias))
        if name in ew:
            e = ew[name]
            t = ins[0] if len(ins) == 1 else None
            if (e.kind in FUSABLE_KINDS and t is not None and t != MODEL_INPUT
                    and len(consumers.get(head.get(t, t), [])) == 1 and e.elems == ew_out_elems(t, layers, ew)):
                alias[name] = t
                head[t] = name
                fused[name] = t
                continue
            lookup = e.elems if e.kind in LOOKUP_KINDS else 0
            steps.append(Step(name, False, [] if lookup else ins, name, e.kind,
                              _ops(e.kind, e.elems, e.in_elems, e.window), lookup))
        else:
            steps.append(Step(name, True, ins or [MODEL_INPUT], name))
        alias[name] = name
        head[name] = name
    tensors: dict[str, Tensor] = {MODEL_INPUT: Tensor(MODEL_INPUT, workload.input_elems, -1)}
    for i, s in enumerate(steps):
        elems = layers[s.name].out_elems if s.is_layer else ew[s.name].elems
        tensors[s.output] = Tensor(s.output, elems, i)
        for t in s.inputs:
            if t in tensors:
                tensors[t].uses.append(i)
    for t in tensors.values():
        if t.name != MODEL_INPUT and not t.uses:
            t.network_output = True
    return Schedule(steps, tensors, fused, _bill(steps, layers))


def ew_out_elems(tensor: str, layers, ew) -> int:
    """Elements of the op output called ``tensor`` (a point-wise op fuses only at equal size)."""
    if tensor in layers:
        return layers[tensor].out_elems
    return ew[tensor].elems if tensor in ew else -1


def _bill(steps: list[Step], layers) -> dict[str, str]:
    """Vector op -> the layer it is billed to: the layer behind its first input (through other
    vector ops), else the next layer in execution order, else the last layer."""
    by_name = {s.name: s for s in steps}
    out: dict[str, str] = {}
    layer_steps = [s.name for s in steps if s.is_layer]
    for i, s in enumerate(steps):
        if s.is_layer:
            continue
        cur, seen = s, set()
        target = None
        while cur is not None and cur.name not in seen:
            seen.add(cur.name)
            src = cur.inputs[0] if cur.inputs else None
            if src in layers:
                target = src
                break
            cur = by_name.get(src) if src else None
        if target is None:
            later = [n for n in layer_steps if steps.index(by_name[n]) > i]
            target = later[0] if later else (layer_steps[-1] if layer_steps else None)
        if target is not None:
            out[s.name] = target
    return out


def residency(schedule: Schedule, act_bits: float, capacity_bits: float) -> Residency:
    """Resident tensors at ``act_bits`` with ``capacity_bits`` of activation buffer (module docstring)."""
    ts = schedule.tensors
    resident = {n: n != MODEL_INPUT and not t.network_output for n, t in ts.items()}
    live_at: list[list[str]] = [[] for _ in schedule.steps]
    for t in ts.values():
        if t.name == MODEL_INPUT:
            continue
        for i in range(max(t.start, 0), t.end + 1):
            live_at[i].append(t.name)
    size = {n: t.elems * act_bits for n, t in ts.items()}
    free: list[float] = []
    for i, step in enumerate(schedule.steps):
        touched = set(step.inputs) | {step.output}
        while True:
            live = [n for n in live_at[i] if resident[n]]
            used = sum(size[n] for n in live)
            if used <= capacity_bits or not live:
                break
            idle = [n for n in live if n not in touched]
            if idle:
                victim = max(idle, key=lambda n: (min([u for u in ts[n].uses if u > i], default=10**9), size[n]))
            else:
                victim = max(live, key=lambda n: size[n])
            resident[victim] = False
        free.append(max(capacity_bits - used, 0.0))
    spilled = tuple(n for n, r in resident.items() if not r and n != MODEL_INPUT and not ts[n].network_output)
    return Residency(resident, free, spilled)
