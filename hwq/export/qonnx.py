"""A precision plan as a QONNX model: ``Quant`` nodes where QONNX can say the format.

``export_qonnx(model, plan, example_input, calib_batches, path) -> QonnxExport``:

1. ``hwq.quant.quantize_model(model, plan)`` and ``hwq.quant.calibrate`` on ``calib_batches`` give
   the fake-quant model (the reference the file must reproduce).
2. The float model is exported to ONNX (TorchScript exporter, BatchNorm kept, no constant folding),
   with every quantized layer's weight initializer replaced by its dequantized weight.
3. For every layer of the plan, a ``Quant`` node (domain ``qonnx.custom_op.general``) quantizes the
   layer's input activation: per-tensor scale of its ``ActQuant``, zero point 0, ``bitwidth`` =
   ``act_bits``, ``signed``/``narrow`` from the grid (signed symmetric ``[-(2^(b-1)-1), 2^(b-1)-1]``:
   narrow; unsigned ``[0, 2^b-1]``), rounding ``ROUND``. INT weights (``int``) get a ``Quant`` node
   too: the dequantized weight, an element-wise scale (``2^-frac * scale_int[group] * row_scale[row]``
   broadcast to the weight's shape), zero point 0, ``bitwidth`` = bits, signed narrow.
   Other weight formats (BitMoD, ANT, FP, MX, ``int_asym``) are written as dequantized float weights
   and listed in ``QonnxExport.lost_format``: QONNX has no Quant for those grids.

Rounding: hwq's activation quantizer sends exact midpoints down (``ceil(x - 0.5)``); QONNX ``ROUND``
sends them to even. They differ only on inputs that land exactly on ``k + 0.5`` levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hwq.errors import UsageError

DOMAIN = "qonnx.custom_op.general"
#: Weight formats QONNX's Quant expresses exactly (symmetric integers with a scale per element).
QUANT_WEIGHT_FORMATS = ("int",)


@dataclass
class QonnxExport:
    """What was written: ``path``, the layers with weight ``Quant`` nodes, with activation ``Quant``
    nodes, and ``lost_format`` ({layer: format}) whose weights are dequantized floats."""

    path: Path
    weight_quant: list[str] = field(default_factory=list)
    act_quant: list[str] = field(default_factory=list)
    lost_format: dict[str, str] = field(default_factory=dict)
    reference: Any = None  # the calibrated fake-quant torch model

    def summary(self) -> dict:
        return {"path": str(self.path), "weight_quant": self.weight_quant, "act_quant": self.act_quant,
                "lost_format": self.lost_format}


def _weight_scale(qw, shape) -> "Any":
    """Element-wise real scale of a QuantizedWeight, in the weight's own shape."""
    import numpy as np

    out, flat = int(shape[0]), int(np.prod(shape[1:]))
    scale_int = np.asarray(qw.scale_int, dtype=np.float64)
    row = np.asarray(qw.row_scale, dtype=np.float64).reshape(out, 1)
    per_group = scale_int * row * 2.0 ** (-qw.frac_bits)
    cols = np.minimum(np.arange(flat) // qw.group_size, per_group.shape[1] - 1) if qw.group_size else \
        np.zeros(flat, dtype=int)
    return per_group[:, cols].reshape(shape)


def export_qonnx(model, plan: dict, example_input, calib_batches: Sequence[Any], path: str | Path) -> QonnxExport:
    """Write ``model`` quantized by ``plan`` as QONNX to ``path`` (see the module docstring)."""
    import copy

    import numpy as np
    import onnx
    import torch
    from onnx import helper, numpy_helper

    from hwq.quant import calibrate, quantize_model
    from hwq.quant.model import plan_from_json
    from hwq.quant.modules import QuantConv2d, QuantLinear
    from hwq.quant.weights import quantize_weight_codes

    layers = plan_from_json(plan) if "layers" in plan else dict(plan)
    fixed = [n for n, p in layers.items() if p.weight_fixed is not None or p.act_fixed is not None]
    if fixed:
        raise UsageError(f"QONNX export: layers {', '.join(fixed)} are fixed point; write a QFX plan "
                         f"(hwq.export.qfx_plan) and use hwq.export.qonnx_fixed.export_qonnx_fixed (hwq export --fixed)")
    model = copy.deepcopy(model).eval()
    ref = calibrate(quantize_model(model, layers), calib_batches).eval()
    mods = dict(ref.named_modules())
    result = QonnxExport(Path(path), reference=ref)
    float_model = copy.deepcopy(model)
    fmods = dict(float_model.named_modules())
    info: dict[str, dict] = {}
    for name, prec in layers.items():
        q = mods[name]
        if not isinstance(q, (QuantConv2d, QuantLinear)):
            raise UsageError(f"QONNX export: layer {name!r} is a {type(q).__name__}; only Conv2d/Linear layers "
                             f"are exported")
        with torch.no_grad():
            wq = q.quantized_weight().detach().clone()
            fmods[name].weight.copy_(wq)
        entry: dict[str, Any] = {"wq": wq}
        if prec.fmt in QUANT_WEIGHT_FORMATS:
            qw = quantize_weight_codes(q.weight.detach(), prec.fmt, prec.bits, group_size=q.group_size)
            if torch.equal(qw.dequantize().reshape(wq.shape).to(wq.dtype), wq):
                entry["scale"] = _weight_scale(qw, tuple(wq.shape)).astype(np.float32)
                entry["bits"] = prec.bits
        if "scale" not in entry:
            result.lost_format[name] = f"{prec.fmt}{prec.bits}"
        aq = q.act_quant
        if aq is not None and float(aq.scale) > 0:
            entry["act"] = (float(aq.scale), aq.bits, aq.signed)
        info[name] = entry

    import shutil

    from hwq.paths import make_scratch_dir  # $TMPDIR/.hwq-export.hwq-tmp-PID-XXXX, cleaned by the next run

    tmpdir = make_scratch_dir("export")
    tmp = tmpdir / "float.onnx"
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    class _Outputs(torch.nn.Module):
        """The model's tensor output (Hugging Face: ``last_hidden_state``), keyword plumbing kept out of ONNX."""

        def __init__(self, inner):
            super().__init__()
            self.m = inner

        def forward(self, *xs):
            out = self.m(*xs)
            if hasattr(out, "last_hidden_state"):
                return out.last_hidden_state
            return out[0] if isinstance(out, (tuple, list)) else out

    try:
        torch.onnx.export(_Outputs(float_model), inputs, str(tmp), dynamo=False, input_names=["input"], output_names=["output"],
                          do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if inputs[0].is_floating_point()
                          else {"input": {0: "batch", 1: "tokens"}, "output": {0: "batch", 1: "tokens"}})
        m = onnx.load(str(tmp))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    g = m.graph
    inits = {i.name: i for i in g.initializer}

    def const(name, value):
        g.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    producer = {o: n for n in g.node for o in n.output}
    prefix = "m."  # the _Outputs wrapper

    def weight_of(node) -> tuple[str, Any]:
        """(initializer name, the node that reads it) of a Conv/Gemm/MatMul's weight operand."""
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            return "", None
        w = node.input[1]
        if w in inits:
            return w, node
        t = producer.get(w)
        if t is not None and t.op_type == "Transpose" and t.input[0] in inits:  # Linear on 3-D inputs
            return t.input[0], t
        return "", None

    weight_nodes, new_nodes = [], []
    for node in g.node:
        wname, reader = weight_of(node)
        layer = wname[len(prefix):-len(".weight")] if wname.startswith(prefix) and wname.endswith(".weight") else None
        entry = info.get(layer) if layer else None
        if entry is not None:
            if "act" in entry:
                s, bits, signed = entry["act"]
                qin = f"{layer}.input_quant"
                new_nodes.append(helper.make_node(
                    "Quant", [node.input[0], const(f"{qin}.scale", s), const(f"{qin}.zeropt", 0.0),
                              const(f"{qin}.bitwidth", bits)], [f"{qin}.out"], name=qin, domain=DOMAIN,
                    signed=int(signed), narrow=int(signed), rounding_mode="HALF_DOWN"))
                node.input[0] = f"{qin}.out"
                result.act_quant.append(layer)
            w = entry["wq"].numpy().astype(np.float32)
            if tuple(inits[wname].dims) != w.shape:
                raise UsageError(f"QONNX export: the ONNX weight of {layer} has shape {list(inits[wname].dims)}, "
                                 f"not {list(w.shape)}")
            inits[wname].CopyFrom(numpy_helper.from_array(w, wname))
            if "scale" in entry:
                qw_name = f"{layer}.weight_quant"
                weight_nodes.append(helper.make_node(
                    "Quant", [wname, const(f"{qw_name}.scale", entry["scale"]), const(f"{qw_name}.zeropt", 0.0),
                              const(f"{qw_name}.bitwidth", entry["bits"])], [f"{qw_name}.out"], name=qw_name,
                    domain=DOMAIN, signed=1, narrow=1, rounding_mode="ROUND"))
                idx = list(reader.input).index(wname)
                reader.input[idx] = f"{qw_name}.out"
                result.weight_quant.append(layer)
        new_nodes.append(node)
    new_nodes = weight_nodes + new_nodes  # weight Quant nodes read only initializers
    missing = sorted(set(info) - set(result.act_quant) - set(result.weight_quant) - set(result.lost_format))
    if missing:
        raise UsageError(f"QONNX export: no ONNX Conv/Gemm/MatMul node reads the weight of {', '.join(missing)}")
    del g.node[:]
    g.node.extend(new_nodes)
    m.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    from hwq.atomic import write_bytes

    write_bytes(path, m.SerializeToString())  # temp file beside it, then rename (README, Output paths)
    return result


def run_qonnx(path: str | Path, x) -> "Any":
    """Outputs of the QONNX file at ``path`` on input ``x`` (numpy), by ``qonnx``'s executor."""
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from qonnx.transformation.infer_shapes import InferShapes

    model = ModelWrapper(str(path))
    x = np.asarray(x)
    x = x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int64)
    # the file's batch axis is symbolic; the executor needs every shape concrete
    model.set_tensor_shape(model.graph.input[0].name, list(x.shape))
    out_name = model.graph.output[0].name
    del model.graph.value_info[:]
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for i, d in enumerate(dims):
        if d.dim_param and i < x.ndim:
            d.dim_value = int(x.shape[i])
    model = model.transform(InferShapes())
    out = execute_onnx(model, {model.graph.input[0].name: x})
    return out[out_name]
