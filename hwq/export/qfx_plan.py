"""Fixed-point (QFX) precision plans: one ``ap_fixed`` type for every tensor of a model.

A QFX plan (``schema`` :data:`SCHEMA`) is the file that ``hwq export --to hls4ml`` (and ``--to qonnx``)
read for fixed-point deployments::

    {"schema": "hwq.qfx/1",
     "inputs": {"model": "digits_cnn", "arch": "fpga_zu", "from_plan": "plan.json" | null},
     "tensors": {"input_quant": "ap_ufixed<8,1,AP_RND,AP_SAT>",
                 "model.stem_conv.weight_quant": "ap_fixed<8,0,AP_RND,AP_SAT>", ...}}

Tensor names are the qualified names of the :class:`hwq.quant.fixed_modules.LearnedFixedQuantizer`
modules of ``to_fixed_point(model)`` (the model wrapped in ``FixedInput``, so layers sit under ``model.``):
weights/biases (``.weight_quant``/``.bias_quant``), BatchNorm scale/shift/output, conv/linear outputs
(``.out_quant``), ReLU outputs (``.quant``, unsigned), residual adds, the input.

:func:`make_qfx_plan` derives one from a model and calibration data: widths from an ``hwq explore``
plan (a layer's weight width = its ``bits``; activations = the largest ``act_bits``) or one width for
everything, binary points by QFX least-squares calibration (``calibrate_fixed``). :func:`qfx_model`
rebuilds the fake-quant model of a plan exactly (every quantizer's type set from the file).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from hwq.datatypes import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat
from hwq.errors import UsageError

SCHEMA = "hwq.qfx/1"
_TYPE = re.compile(r"^\s*(ap_fixed|ap_ufixed)<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(AP_\w+)\s*)?(?:,\s*(AP_\w+)\s*)?>"
                   r"(?:_k(\d+))?\s*$")


def format_text(fmt: FixedFormat) -> str:
    """``ap_fixed<W,I,AP_Q,AP_O>`` (``ap_ufixed`` if unsigned; ``_kK`` suffix for K-hot weights)."""
    base = "ap_fixed" if fmt.signed else "ap_ufixed"
    khot = f"_k{fmt.k_hot}" if fmt.k_hot else ""
    return f"{base}<{fmt.width},{fmt.int_bits},AP_{fmt.rounding},AP_{fmt.overflow}>{khot}"


def parse_format(text: str, where: str = "") -> FixedFormat:
    """The :class:`FixedFormat` of an ``ap_fixed<W,I[,AP_Q[,AP_O]]>`` text (HLS defaults: TRN, WRAP)."""
    m = _TYPE.match(str(text))
    if not m:
        raise UsageError(f"{where}{text!r} is not an ap_fixed<W,I,AP_Q,AP_O> / ap_ufixed<...> type")
    base, w, i, q, o, k = m.groups()
    rounding = (q or "AP_TRN")[3:]
    overflow = (o or "AP_WRAP")[3:]
    if rounding not in ROUNDING_MODES or overflow not in OVERFLOW_MODES:
        raise UsageError(f"{where}{text!r}: rounding must be AP_{'/AP_'.join(ROUNDING_MODES)} and overflow "
                         f"AP_{'/AP_'.join(OVERFLOW_MODES)}")
    try:
        return FixedFormat(int(w), int(i), base == "ap_fixed", rounding, overflow, int(k) if k else None)
    except ValueError as err:
        raise UsageError(f"{where}{text!r}: {err}") from None


def is_qfx_plan(plan: Mapping[str, Any]) -> bool:
    """Whether ``plan`` (a loaded JSON dict) is a QFX plan rather than an ``hwq explore`` plan."""
    return isinstance(plan, Mapping) and plan.get("schema") == SCHEMA


def plan_tensors(plan: Mapping[str, Any]) -> dict[str, FixedFormat]:
    """``{quantizer name: FixedFormat}`` of a QFX plan (one-line ``UsageError`` on a bad entry)."""
    tensors = plan.get("tensors")
    if not isinstance(tensors, Mapping) or not tensors:
        raise UsageError(f"a {SCHEMA} plan needs a non-empty \"tensors\" map of quantizer name -> ap_fixed type")
    return {str(n): parse_format(t, f"tensor {n}: ") for n, t in tensors.items()}


def _widths(model, plan: Mapping[str, Any] | None, width: int | None) -> tuple[int, dict[str, int]]:
    """(activation width, {layer: weight width}) from an explore plan or one ``width``."""
    if plan is None:
        if not width:
            raise UsageError("a QFX plan needs widths: give an hwq explore plan or one width in bits")
        return int(width), {}
    layers = plan.get("layers") or []
    names = dict(model.named_modules())
    unknown = [l["name"] for l in layers if l.get("name") not in names]
    if unknown:
        raise UsageError(f"the plan names layers the model does not have: {', '.join(unknown)}")
    acts = [int(l["act_bits"]) for l in layers if l.get("act_bits")]
    act = max(acts) if acts else int(width or 0)
    if not act:
        raise UsageError("the plan gives no act_bits; a fixed-point plan needs an activation width")
    return act, {l["name"]: int(l["bits"]) for l in layers if "bits" in l}


def make_qfx_plan(model, calib_batches: Iterable[Any], *, model_name: str, arch: str,
                  plan: Mapping[str, Any] | None = None, width: int | None = None, rounding: str = "RND",
                  overflow: str = "SAT", from_plan: str | None = None) -> dict:
    """A QFX plan for ``model`` (see the module docstring): widths from ``plan`` or ``width`` (bits),
    binary points calibrated on ``calib_batches``; ``rounding``/``overflow``: the ap_fixed modes."""
    import torch

    from hwq.quant.fixed_modules import calibrate_fixed, fixed_quantizers, to_fixed_point

    act, weight_widths = _widths(model, plan, width)
    try:
        q = to_fixed_point(model.eval(), act, rounding=rounding, overflow=overflow)
    except ValueError as err:
        raise UsageError(f"fixed-point plan: {err}") from None
    mods = dict(q.named_modules())
    for layer, bits in weight_widths.items():
        m = mods.get(f"model.{layer}")
        wq = getattr(m, "weight_quant", None)
        if wq is None:
            continue
        for quant, data in ((wq, m.weight), (getattr(m, "bias_quant", None), getattr(m, "bias", None))):
            if quant is not None and data is not None:
                quant.width = bits
                quant.init_from(data)
    with torch.no_grad():
        calibrate_fixed(q, list(calib_batches))
    return {"schema": SCHEMA, "inputs": {"model": model_name, "arch": arch, "from_plan": from_plan},
            "tensors": {n: format_text(m.fmt) for n, m in fixed_quantizers(q)}}


def qfx_model(model, plan: Mapping[str, Any]):
    """The fake-quant model of QFX plan ``plan``: ``to_fixed_point(model)`` with every quantizer's
    type (width, binary point, signedness, modes, K-hot) set from the plan (eval mode)."""
    import torch

    from hwq.quant.fixed_modules import fixed_quantizers, to_fixed_point

    tensors = plan_tensors(plan)
    q = to_fixed_point(model.eval(), 8)
    quants = dict(fixed_quantizers(q))
    missing, extra = sorted(set(quants) - set(tensors)), sorted(set(tensors) - set(quants))
    if missing or extra:
        raise UsageError("the QFX plan does not match the model: "
                         + (f"no type for {', '.join(missing)}" if missing else "")
                         + ("; " if missing and extra else "")
                         + (f"no such tensor: {', '.join(extra)}" if extra else ""))
    for name, fmt in tensors.items():
        m = quants[name]
        m.width, m.signed, m.rounding, m.overflow, m.k_hot = fmt.width, fmt.signed, fmt.rounding, fmt.overflow, \
            fmt.k_hot
        with torch.no_grad():
            m.f.fill_(float(fmt.frac_bits))
    return q.eval()
