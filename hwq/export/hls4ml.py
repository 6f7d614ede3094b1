"""A fixed-point (QFX) plan as an hls4ml project whose C++ emulation is bit-exact with hwq.

``export_hls4ml(model, qfx_plan, spec, out_dir) -> Hls4mlExport`` writes, under ``out_dir``:

* ``hls4ml_config.json``: the hls4ml configuration (``LayerName`` granularity) with one
  ``ap_fixed<W,I,AP_Q,AP_O>`` per layer for ``weight``, ``bias``, ``accum`` and ``result``
  (BatchNorm: ``scale``, ``bias``, ``result``), read from the QFX plan;
* ``qfx_plan.json``: the plan itself (every tensor's type);
* ``hls4ml_prj/``: the project hls4ml writes from that config (Vivado backend, ``io_parallel``),
  with the weights already on their fixed-point grids.

How each layer maps (the model seen by hls4ml is a float copy whose parameters are the plan's
fixed-point values, so hls4ml's weight conversion is exact):

* Conv2d / Linear: ``weight``/``bias`` = the plan's weight/bias types (no bias: a zero bias of the
  weight's type); ``result`` = the layer's output cast; ``accum`` = ``ap_fixed<A, A - F>`` with
  ``A`` = the preset's ``arithmetic.accumulator_bits`` and ``F`` = max(input F + weight F, bias F),
  so every product and the sum are exact; if the exact sum can exceed ``A`` bits the export fails
  naming the layer.
* BatchNorm2d: ``scale``/``bias`` = the plan's scale/shift types; the module handed to hls4ml has
  ``gamma`` = quantized scale, ``beta`` = quantized shift, mean 0, variance 1, ``eps`` 0, so hls4ml's
  ``scale = gamma / sqrt(var + eps)`` is the exact quantized scale; ``result`` = the BN output cast.
  A ``result`` type is set on every Conv, so hls4ml's BatchNorm fusion (only for untyped outputs) is off.
* ReLU (``result`` unsigned), the residual ``Add`` (``result``), MaxPool2d / flatten (``result`` =
  their input's type, values are unchanged).

Anything else (another op, or an ``AP_WRAP_SM`` type, which hls4ml's ``SaturationMode`` lacks) is a
``UsageError`` naming the layer and the reason.

``check_hls4ml(export, x)`` compiles the project's C++ emulation (g++, bundled ``ap_types``),
runs ``predict`` on ``x`` and counts mismatches against hwq's fixed-point golden model
(:mod:`hwq.export.qfx_golden`: int64 codes, every cast by ``hwq.golden.requantize``); it also counts
where that golden model and the QFX fake-quant model in float64 differ (exact casts of
``hwq.quant.fixed``; sums exact since every value is dyadic with at most ``accumulator_bits`` < 53
significant bits), which should be nowhere.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hwq.datatypes import FixedFormat
from hwq.errors import UsageError
from hwq.export.qfx_plan import format_text, qfx_model

#: Overflow modes hls4ml's ``SaturationMode`` can write (it has no ``WRAP_SM``).
HLS4ML_OVERFLOW = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
PROJECT_DIR = "hls4ml_prj"
#: float64 holds every integer below 2**53 exactly: the golden model's exactness bound (bits).
FLOAT64_EXACT_BITS = 53


@dataclass
class LayerTypes:
    """The hls4ml precisions of one layer (``kind``: hls4ml's layer class; ``types``: key -> text)."""

    name: str
    kind: str
    module: str
    types: dict[str, str] = field(default_factory=dict)


@dataclass
class Hls4mlExport:
    """What :func:`export_hls4ml` wrote: ``out_dir``, the per-layer types, the hls4ml model object
    and the fake-quant reference (the QFX model)."""

    out_dir: Path
    layers: list[LayerTypes]
    config: dict
    hls_model: Any = None
    reference: Any = None
    model: Any = None  # the float model the plan quantizes

    def summary(self) -> dict:
        return {"out_dir": str(self.out_dir), "project": str(self.out_dir / PROJECT_DIR),
                "config": str(self.out_dir / "hls4ml_config.json"),
                "layers": [{"name": l.name, "kind": l.kind, "module": l.module, **l.types} for l in self.layers]}


@dataclass
class Hls4mlCheck:
    """Agreement of hls4ml's C++ emulation with the golden model on ``images`` inputs."""

    images: int
    mismatched_images: int
    mismatched_values: int
    max_abs_diff: float
    compile_s: float
    predict_s: float
    compile_cpu_s: float  # CPU seconds of the g++ processes (the wall time depends on the machine's load)
    golden_vs_fake_quant_mismatches: int  # integer golden vs float64 fake-quant model (values; 0 expected)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _hls_type(fmt: FixedFormat, where: str) -> str:
    if fmt.overflow not in HLS4ML_OVERFLOW:
        raise UsageError(f"hls4ml export: {where} is {format_text(fmt)}; hls4ml has no AP_{fmt.overflow} "
                         f"overflow mode (it writes {', '.join('AP_' + o for o in HLS4ML_OVERFLOW)})")
    base = "ap_fixed" if fmt.signed else "ap_ufixed"
    return f"{base}<{fmt.width},{fmt.int_bits},AP_{fmt.rounding},AP_{fmt.overflow}>"


def _max_abs_code(fmt: FixedFormat) -> int:
    return max(-fmt.min_code, fmt.max_code)


def _accum(layer: str, x: FixedFormat, w: FixedFormat, b: FixedFormat | None, k: int, acc_bits: int) -> str:
    """Exact accumulator type of a ``k``-term dot product (+ bias) in ``acc_bits`` bits."""
    frac = max(x.frac_bits + w.frac_bits, b.frac_bits if b is not None else -10 ** 6)
    bound = k * _max_abs_code(x) * _max_abs_code(w) << (frac - x.frac_bits - w.frac_bits)
    if b is not None:
        bound += _max_abs_code(b) << (frac - b.frac_bits)
    need = bound.bit_length() + 1  # sign
    if need > acc_bits:
        raise UsageError(f"hls4ml export: layer {layer}'s exact sum needs {need} bits, more than the preset's "
                         f"accumulator_bits {acc_bits}; use narrower types or a wider accumulator")
    return f"ap_fixed<{acc_bits},{acc_bits - frac}>"


def deployment_model(model, q):
    """A float copy of ``model`` whose parameters are QFX model ``q``'s fixed-point values (BatchNorm
    reparametrised to ``gamma`` = scale, ``beta`` = shift, mean 0, variance 1, eps 0)."""
    import torch
    from torch import nn

    qmods = dict(q.named_modules())
    dep = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, m in dep.named_modules():
            fm = qmods.get(f"model.{name}")
            if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(fm, "weight_quant", None) is not None:
                w, b = fm._qparams()
                m.weight.copy_(w)
                if m.bias is not None:
                    m.bias.copy_(b)
            elif isinstance(m, nn.BatchNorm2d) and hasattr(fm, "scale_quant"):
                m.weight.copy_(fm.scale_quant(fm.scale))
                m.bias.copy_(fm.shift_quant(fm.shift))
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.eps = 0.0
    return dep


def _graphs(dep):
    """(hls4ml's trace, a trace with hwq ``Add`` modules kept as leaves) of ``dep``: the same nodes in
    the same order, except that an ``Add`` module call is an ``add`` function in hls4ml's."""
    from hls4ml.utils.torch import CustomFXTracer

    from hwq.quant.modules import Add

    class _AddLeaf(CustomFXTracer):
        def is_leaf_module(self, m, name: str) -> bool:
            return isinstance(m, Add) or super().is_leaf_module(m, name)

    try:
        return CustomFXTracer().trace(dep), _AddLeaf().trace(dep)
    except Exception as err:  # noqa: BLE001 - torch.fx raises many types on untraceable Python
        first = (str(err).splitlines() or [""])[0][:200]
        raise UsageError(f"hls4ml export: torch.fx cannot trace the model, as hls4ml's PyTorch frontend must "
                         f"({type(err).__name__}: {first})") from None


def layer_types(model, q, dep, acc_bits: int) -> list[LayerTypes]:
    """hls4ml precisions of every node of ``dep`` (see the module docstring); ``UsageError`` on
    an op hls4ml or the QFX plan cannot express, naming the node and module path."""
    import torch
    from torch import nn

    from hwq.quant.fixed_modules import fixed_quantizers
    from hwq.quant.modules import Add

    pass_through = (torch.flatten, torch.reshape)  # values unchanged: the input's type
    quants = {n: m.fmt for n, m in fixed_quantizers(q)}
    mods = dict(dep.named_modules())
    hls_graph, leaf_graph = _graphs(dep)
    hls_nodes = [n for n in hls_graph.nodes if n.op != "output"]
    leaf_nodes = [n for n in leaf_graph.nodes if n.op != "output"]
    if len(hls_nodes) != len(leaf_nodes):
        raise UsageError("hls4ml export: the model's graph differs between tracers (an Add module with more "
                         "than one operation?)")
    out_fmt: dict[str, FixedFormat] = {}
    layers: list[LayerTypes] = []

    def q_of(key: str, where: str) -> FixedFormat:
        if key not in quants:
            raise UsageError(f"hls4ml export: {where} has no fixed-point type in the QFX plan ({key})")
        return quants[key]

    first_input = True
    for hn, ln in zip(hls_nodes, leaf_nodes):
        name = hn.name
        if hn.op == "placeholder":
            if not first_input:
                raise UsageError(f"hls4ml export: input {name}: only single-input models are exported")
            first_input = False
            fmt = q_of("input_quant", f"input {name}")
            out_fmt[name] = fmt
            layers.append(LayerTypes(name, "InputLayer", "", {"result": _hls_type(fmt, f"input {name}")}))
            continue
        ins = [a.name for a in hn.all_input_nodes]
        prev = out_fmt.get(ins[0]) if ins else None
        module = ln.target if ln.op == "call_module" else ""
        mod = mods.get(module) if module else None
        where = f"layer {name} ({module or hn.target})"
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            w = q_of(f"model.{module}.weight_quant", where)
            b = quants.get(f"model.{module}.bias_quant")
            res = q_of(f"model.{module}.out_quant", where)
            k = mod.weight[0].numel()
            types = {"weight": _hls_type(w, where), "bias": _hls_type(b or w, where),
                     "accum": _accum(name, prev, w, b, k, acc_bits), "result": _hls_type(res, where)}
            layers.append(LayerTypes(name, "Conv2D" if isinstance(mod, nn.Conv2d) else "Dense", module, types))
        elif isinstance(mod, nn.BatchNorm2d):
            res = q_of(f"model.{module}.out_quant", where)
            types = {"scale": _hls_type(q_of(f"model.{module}.scale_quant", where), where),
                     "bias": _hls_type(q_of(f"model.{module}.shift_quant", where), where),
                     "result": _hls_type(res, where)}
            layers.append(LayerTypes(name, "BatchNormalization", module, types))
        elif isinstance(mod, nn.ReLU):
            res = q_of(f"model.{module}.quant", where)
            layers.append(LayerTypes(name, "Activation", module, {"result": _hls_type(res, where)}))
        elif isinstance(mod, Add):
            res = q_of(f"model.{module}.quant", where)
            layers.append(LayerTypes(name, "Merge", module, {"result": _hls_type(res, where)}))
        elif isinstance(mod, nn.MaxPool2d) or (hn.op == "call_function" and hn.target in pass_through):
            res = prev
            t = _hls_type(res, where)
            kind = "MaxPooling2D" if mod is not None else "Reshape"
            layers.append(LayerTypes(name, kind, module, {"result": t, **({"accum": t} if mod is not None else {})}))
        else:
            what = type(mod).__name__ if mod is not None else getattr(hn.target, "__name__", str(hn.target))
            raise UsageError(f"hls4ml export: {where}: {what} is not exported (supported: Conv2d, Linear, "
                             f"BatchNorm2d, ReLU, hwq Add, MaxPool2d, flatten)")
        out_fmt[name] = res
    return layers


def _config(dep, example_input, layers: list[LayerTypes]) -> dict:
    import hls4ml

    shape = tuple(int(s) for s in example_input.shape[1:])
    with contextlib.redirect_stdout(io.StringIO()):
        cfg = hls4ml.utils.config_from_pytorch_model(dep, shape, granularity="name", backend="Vivado",
                                                     default_precision="ap_fixed<16,6>")
    by_name = cfg["LayerName"]
    for l in layers:
        if l.name not in by_name:
            raise UsageError(f"hls4ml export: hls4ml's configuration has no layer {l.name}")
        by_name[l.name]["Precision"].update(l.types)
    return cfg


def export_hls4ml(model, plan: Mapping[str, Any], spec, example_input, out_dir: str | Path) -> Hls4mlExport:
    """Write the hls4ml configuration and project of QFX plan ``plan`` for ``model`` on ``spec``
    (an FPGA :class:`hwq.spec.AcceleratorSpec`) to ``out_dir`` (see the module docstring)."""
    import hls4ml

    from hwq.atomic import write_text

    if spec.family != "fpga":
        raise UsageError(f"hls4ml export targets an FPGA preset; {spec.name} is a {spec.family} accelerator")
    q = qfx_model(model, plan)
    dep = deployment_model(model, q)
    acc_bits = int(spec.arithmetic.accumulator_bits)
    if acc_bits >= FLOAT64_EXACT_BITS:
        raise UsageError(f"hls4ml export: accumulator_bits {acc_bits} >= {FLOAT64_EXACT_BITS}: the float64 golden "
                         f"model would not be exact")
    layers = layer_types(model, q, dep, acc_bits)
    cfg = _config(dep, example_input, layers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            hm = hls4ml.converters.convert_from_pytorch_model(dep, hls_config=cfg, output_dir=str(out / PROJECT_DIR),
                                                              backend="Vivado", io_type="io_parallel")
            hm.write()
    except Exception as err:  # noqa: BLE001 - hls4ml raises bare Exceptions for what it cannot convert
        first = (str(err).splitlines() or [""])[0][:200]
        raise UsageError(f"hls4ml export: hls4ml could not convert the model ({type(err).__name__}: {first})") from None
    public = {k: v for k, v in cfg.items() if k != "PytorchModel"}
    write_text(out / "hls4ml_config.json", json.dumps(public, indent=1, default=str) + "\n")
    write_text(out / "qfx_plan.json", json.dumps(dict(plan), indent=1) + "\n")
    return Hls4mlExport(out, layers, public, hm, q, model)


def check_hls4ml(export: Hls4mlExport, x) -> Hls4mlCheck:
    """Compile ``export``'s C++ emulation, ``predict`` on ``x`` (a float tensor batch) and compare
    with the integer golden model value by value (module docstring)."""
    import numpy as np
    import torch

    import resource

    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            export.hls_model.compile()
    except Exception as err:  # g++ errors come back as a generic Exception from hls4ml
        raise UsageError(f"hls4ml compile failed ({err}); is g++ installed? (apt-get install g++)") from None
    t1 = time.time()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    compile_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    xs = np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))
    with contextlib.redirect_stdout(log):
        got = np.asarray(export.hls_model.predict(xs), dtype=np.float64)
    t2 = time.time()
    from hwq.export.qfx_golden import qfx_golden

    ref = qfx_golden(export.model, export.reference, x)
    fq = copy.deepcopy(export.reference).double().eval()
    with torch.no_grad():
        fake = fq(x.double()).numpy()
    got = got.reshape(ref.shape)
    diff = got != ref
    return Hls4mlCheck(int(ref.shape[0]), int(diff.reshape(ref.shape[0], -1).any(1).sum()), int(diff.sum()),
                       float(np.abs(got - ref).max(initial=0.0)), round(t1 - t0, 1), round(t2 - t1, 1),
                       round(compile_cpu, 1), int((fake != ref).sum()))


__all__ = ["export_hls4ml", "check_hls4ml", "layer_types", "deployment_model", "Hls4mlExport", "Hls4mlCheck",
           "LayerTypes"]
