"""A fixed-point (QFX) plan as a QONNX model: a ``Quant`` node for every ``ap_fixed`` tensor.

``export_qonnx_fixed(model, qfx_plan, example_input, path) -> QonnxExport``:

1. ``hwq.export.qfx_plan.qfx_model`` gives the fake-quant reference (every tensor an ``ap_fixed``);
   the float model handed to ONNX carries its fixed-point parameter values
   (``hwq.export.hls4ml.deployment_model``: BatchNorm as scale/shift with mean 0, variance 1, eps 0).
2. The float model is exported to ONNX (TorchScript exporter, BatchNorm kept, no constant folding).
3. A ``Quant`` node (domain ``qonnx.custom_op.general``) is put on every tensor the plan types: the
   model input, conv/linear weights and biases, BatchNorm scale and shift, and the outputs of
   Conv/Gemm, BatchNormalization, Relu and the residual Add. ``ap_fixed<W,I>`` is ``scale = 2^-F``
   (F = W - I), zero point 0, ``bitwidth`` = W, ``signed`` from the type, ``narrow`` = 0.

Rounding and overflow, ap_fixed -> QONNX (``Quant`` clamps to the integer range, then rounds):

* ``AP_SAT``: the clamp itself. ``AP_SAT_SYM`` signed: ``narrow`` = 1. ``AP_WRAP``/``AP_SAT_ZERO``/
  ``AP_WRAP_SM`` cannot be said by ``Quant`` (it always clamps): written with the clamp and listed in
  ``QonnxExport.lost_format`` (they differ only where a value overflows).
* ``AP_TRN`` -> ``FLOOR``, ``AP_TRN_ZERO`` -> ``DOWN``, ``AP_RND_ZERO`` -> ``HALF_DOWN``,
  ``AP_RND_INF`` -> ``HALF_UP``, ``AP_RND_CONV`` -> ``HALF_EVEN``. ``AP_RND`` (half toward +inf) and
  ``AP_RND_MIN_INF`` (half toward -inf) have no ``Quant`` mode: an ``Add`` of +-half an LSB before a
  ``FLOOR``/``CEIL`` ``Quant`` gives them exactly (``floor(x/s + 1/2)``, ``ceil(x/s - 1/2)``); on an
  unsigned tensor ``AP_RND`` is ``HALF_UP`` (no negative midpoints).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

from hwq.datatypes import FixedFormat
from hwq.errors import UsageError
from hwq.export.qfx_plan import format_text, qfx_model
from hwq.export.qonnx import DOMAIN, QonnxExport
from hwq.paths import scratch_dir

#: ap_fixed rounding -> (QONNX rounding_mode, LSB offset added before the Quant).
ROUNDING = {"TRN": ("FLOOR", 0.0), "TRN_ZERO": ("DOWN", 0.0), "RND_ZERO": ("HALF_DOWN", 0.0),
            "RND_INF": ("HALF_UP", 0.0), "RND_CONV": ("HALF_EVEN", 0.0), "RND": ("FLOOR", 0.5),
            "RND_MIN_INF": ("CEIL", -0.5)}
#: ap_fixed overflow modes a clamping Quant expresses.
CLAMPING = ("SAT", "SAT_SYM")


def _mode(fmt: FixedFormat) -> tuple[str, float]:
    if fmt.rounding == "RND" and not fmt.signed:
        return "HALF_UP", 0.0
    return ROUNDING[fmt.rounding]


def cast_nodes(tensor: str, fmt: FixedFormat, qname: str) -> tuple[list, list, str]:
    """(nodes, initializers, output name) that cast ONNX tensor ``tensor`` to ``fmt`` (module docstring)."""
    import numpy as np
    from onnx import helper, numpy_helper

    def const(name: str, value) -> Any:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    mode, offset = _mode(fmt)
    scale = 2.0 ** -fmt.frac_bits
    nodes, consts, src = [], [], tensor
    if offset:
        src = f"{qname}.offset_out"
        consts.append(const(f"{qname}.offset", offset * scale))
        nodes.append(helper.make_node("Add", [tensor, f"{qname}.offset"], [src], name=f"{qname}.offset_add"))
    consts += [const(f"{qname}.scale", scale), const(f"{qname}.zeropt", 0.0), const(f"{qname}.bitwidth", fmt.width)]
    out = f"{qname}.out"
    nodes.append(helper.make_node("Quant", [src, f"{qname}.scale", f"{qname}.zeropt", f"{qname}.bitwidth"], [out],
                                  name=qname, domain=DOMAIN, signed=int(fmt.signed),
                                  narrow=int(fmt.overflow == "SAT_SYM" and fmt.signed), rounding_mode=mode))
    return nodes, consts, out


def export_qonnx_fixed(model, plan: Mapping[str, Any], example_input, path: str | Path) -> QonnxExport:
    """Write ``model`` under QFX plan ``plan`` as QONNX to ``path`` (see the module docstring)."""
    import onnx
    import torch
    from onnx import helper
    from torch import nn

    from hwq.atomic import write_bytes
    from hwq.export.hls4ml import deployment_model
    from hwq.quant.fixed_modules import fixed_quantizers
    from hwq.quant.modules import Add

    q = qfx_model(model, plan)
    dep = deployment_model(model, q)
    quants = {n: m.fmt for n, m in fixed_quantizers(q)}
    result = QonnxExport(Path(path), reference=q)
    mods = dict(dep.named_modules())

    class _Wrap(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.m = inner

        def forward(self, x):
            return self.m(x)

    with scratch_dir("export") as tmpdir:  # $TMPDIR/.hwq-export.hwq-tmp-PID-XXXX, cleaned by the next run
        tmp = Path(tmpdir) / "float.onnx"
        torch.onnx.export(_Wrap(dep), (example_input,), str(tmp), dynamo=False, input_names=["input"],
                          output_names=["output"], do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        m = onnx.load(str(tmp))
    g = m.graph
    inits = {i.name for i in g.initializer}

    def quant(tensor: str, fmt: FixedFormat, qname: str, nodes: list, what: str) -> str:
        """Append the nodes that cast ``tensor`` to ``fmt``; returns the cast tensor's name."""
        if fmt.overflow not in CLAMPING:
            result.lost_format[what] = f"{format_text(fmt)} (Quant clamps: AP_{fmt.overflow} not expressed)"
        cast, consts, out = cast_nodes(tensor, fmt, qname)
        nodes.extend(cast)
        g.initializer.extend(consts)
        return out

    def module_of(node) -> str:
        parts = node.name.strip("/").split("/")
        path = parts[1:-1] if parts and parts[0] == "m" else parts[:-1]
        return ".".join(path)

    param_nodes: list = []
    new_nodes: list = []
    rename: dict[str, str] = {}
    inp = g.input[0].name
    rename[inp] = quant(inp, quants["input_quant"], "input_quant", new_nodes, "input")
    result.act_quant.append("input")
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
        new_nodes.append(node)
        mpath = module_of(node)
        mod = mods.get(mpath)
        out_key = None
        if isinstance(mod, (nn.Conv2d, nn.Linear)) and node.op_type in ("Conv", "Gemm"):
            for idx, key in ((1, "weight_quant"), (2, "bias_quant")):
                if idx < len(node.input) and node.input[idx] in inits and f"model.{mpath}.{key}" in quants:
                    node.input[idx] = quant(node.input[idx], quants[f"model.{mpath}.{key}"], f"{mpath}.{key}",
                                            param_nodes, f"{mpath}.{key[:-6]}")
                    result.weight_quant.append(f"{mpath}.{key[:-6]}")
            out_key = f"model.{mpath}.out_quant"
        elif isinstance(mod, nn.BatchNorm2d) and node.op_type == "BatchNormalization":
            for idx, key in ((1, "scale_quant"), (2, "shift_quant")):
                node.input[idx] = quant(node.input[idx], quants[f"model.{mpath}.{key}"], f"{mpath}.{key}",
                                        param_nodes, f"{mpath}.{key[:-6]}")
                result.weight_quant.append(f"{mpath}.{key[:-6]}")
            out_key = f"model.{mpath}.out_quant"
        elif isinstance(mod, nn.ReLU) and node.op_type == "Relu":
            out_key = f"model.{mpath}.quant"
        elif isinstance(mod, Add) and node.op_type == "Add":
            out_key = f"model.{mpath}.quant"
        elif node.op_type in ("Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Add"):
            raise UsageError(f"QONNX fixed-point export: ONNX node {node.name} ({node.op_type}) has no type in the "
                             f"QFX plan (module {mpath or '?'})")
        if out_key is not None:
            if out_key not in quants:
                raise UsageError(f"QONNX fixed-point export: no type for {out_key} in the QFX plan")
            t = node.output[0]
            rename[t] = quant(t, quants[out_key], out_key[len("model."):], new_nodes, mpath)
            result.act_quant.append(mpath)
    for o in g.output:  # the graph output is the cast value: producer -> NAME.float -> Quant -> Identity -> NAME
        if o.name in rename:
            raw = o.name + ".float"
            for node in new_nodes:
                node.output[:] = [raw if t == o.name else t for t in node.output]
                node.input[:] = [raw if t == o.name else t for t in node.input]
            new_nodes.append(helper.make_node("Identity", [rename[o.name]], [o.name], name=f"{o.name}.cast"))
    del g.node[:]
    g.node.extend(param_nodes + new_nodes)
    m.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    write_bytes(path, m.SerializeToString())
    return result


def reference_outputs(export: QonnxExport, x) -> "Any":
    """The fake-quant QFX model's outputs on ``x`` (float64, exact casts), as numpy."""
    import torch

    ref = copy.deepcopy(export.reference).double().eval()
    with torch.no_grad():
        return ref(x.double()).numpy()
