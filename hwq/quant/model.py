"""Per-layer precision plans applied to a model: :class:`LayerPrecision` and :func:`quantize_model`."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from hwq.datatypes import DEFAULT_GROUP_SIZE, FixedFormat, resolve
from hwq.quant.modules import ActQuant, Add, QuantAdd, QuantConv2d, QuantLinear


@dataclass(frozen=True)
class LayerPrecision:
    """Precision of one layer.

    Attributes:
        fmt: weight format family (``int``, ``int_asym``, ``fp``, ``bitmod``, ``ant``, ``mx``).
        bits: weight bits.
        act_bits: input activation bits (None: activations stay float).
        group_size: weights per quantization group (None/0: per output channel).
        weight_fixed / act_fixed: ap_fixed formats; when set, the layer uses the fixed-point
            modules of :mod:`hwq.quant.fixed_modules` instead of ``fmt``/``act_bits``.
    """

    fmt: str
    bits: int
    act_bits: int | None = None
    group_size: int | None = DEFAULT_GROUP_SIZE
    weight_fixed: FixedFormat | None = None
    act_fixed: FixedFormat | None = None

    def __post_init__(self) -> None:
        if self.weight_fixed is None and self.act_fixed is None:
            resolve(self.fmt, self.bits)  # raises ValueError naming the supported choices


def plan_from_json(plan: Mapping[str, Any]) -> dict[str, LayerPrecision]:
    """Convert the plan.json form ``{"layers": [{"name", "format", "bits", "act_bits", "group_size"?}]}``."""
    if "layers" not in plan:
        raise ValueError("plan dict must have a 'layers' list (plan.json form) or map layer names to LayerPrecision")
    out: dict[str, LayerPrecision] = {}
    for i, entry in enumerate(plan["layers"]):
        missing = [k for k in ("name", "format", "bits") if k not in entry]
        if missing:
            raise ValueError(f"plan layer #{i} lacks {', '.join(missing)}")
        out[entry["name"]] = LayerPrecision(entry["format"], int(entry["bits"]), entry.get("act_bits"),
                                            entry.get("group_size", DEFAULT_GROUP_SIZE))
    return out


def _normalise(plan: Mapping[str, Any]) -> dict[str, LayerPrecision]:
    if "layers" in plan and not isinstance(plan["layers"], LayerPrecision):
        return plan_from_json(plan)
    bad = [k for k, v in plan.items() if not isinstance(v, LayerPrecision)]
    if bad:
        raise ValueError(f"plan values must be LayerPrecision; got other values for {', '.join(bad)}")
    return dict(plan)


def _fixed_module(name: str, module: nn.Module, prec: LayerPrecision) -> nn.Module:
    """Delegate to the fixed-point part (Conv2d/Linear/BatchNorm2d/ReLU/Add; learned binary points)."""
    from hwq.quant.fixed_modules import fixed_module_for

    replacement = fixed_module_for(module, prec.weight_fixed, prec.act_fixed)
    if replacement is None:
        raise ValueError(f"layer {name!r} ({type(module).__name__}) has nothing to quantize in fixed point "
                         f"with weight_fixed={prec.weight_fixed} act_fixed={prec.act_fixed}")
    return replacement


def _quantized(name: str, module: nn.Module, prec: LayerPrecision) -> nn.Module:
    if prec.weight_fixed is not None or prec.act_fixed is not None:
        return _fixed_module(name, module, prec)
    kw = dict(fmt=prec.fmt, bits=prec.bits, group_size=prec.group_size, act_bits=prec.act_bits)
    if isinstance(module, nn.Linear):
        k = module.in_features
    elif isinstance(module, nn.Conv2d):
        k = module.weight[0].numel()
    elif isinstance(module, Add):
        if not prec.act_bits:
            raise ValueError(f"layer {name!r} is a residual add: its plan entry needs act_bits")
        return QuantAdd(prec.act_bits)
    else:
        raise ValueError(f"layer {name!r} is a {type(module).__name__}; plans cover Linear, Conv2d and Add layers")
    if prec.fmt != "mx" and prec.group_size and k % prec.group_size:
        raise ValueError(f"layer {name!r}: group size {prec.group_size} does not divide its row length {k}")
    cls = QuantLinear if isinstance(module, nn.Linear) else QuantConv2d
    return cls.from_float(module, **kw)


def quantize_model(model: nn.Module, plan: Mapping[str, Any], *, inplace: bool = False) -> nn.Module:
    """Swap every layer named in ``plan`` for its fake-quant version (names and parameters kept).

    ``plan``: ``{qualified module name: LayerPrecision}`` or the plan.json dict form. Returns a
    deep copy unless ``inplace``. Layers not in the plan stay float. Unknown names -> ValueError
    naming them. Activation quantizers start calibrating: run :func:`calibrate` (or a few
    forward passes, then :func:`freeze`) before evaluation.
    """
    layers = _normalise(plan)
    modules = dict(model.named_modules())
    unknown = sorted(set(layers) - set(modules))
    if unknown:
        raise ValueError(f"plan names layers the model does not have: {', '.join(unknown)}")
    target = model if inplace else copy.deepcopy(model)
    for name, prec in layers.items():
        if not name:
            raise ValueError("plan cannot name the root module ''")
        parent_name, _, attr = name.rpartition(".")
        parent = target.get_submodule(parent_name)
        setattr(parent, attr, _quantized(name, getattr(parent, attr), prec))
    return target


def activation_quantizers(model: nn.Module) -> Iterable[ActQuant]:
    """Every :class:`ActQuant` in ``model``."""
    return (m for m in model.modules() if isinstance(m, ActQuant))


def freeze(model: nn.Module) -> nn.Module:
    """Stop calibration of every activation quantizer."""
    for q in activation_quantizers(model):
        q.freeze()
    return model


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[Any]) -> nn.Module:
    """Run ``batches`` (tensors or tuples of positional inputs) through ``model`` in eval mode to set
    the activation scales by running absmax, then freeze them."""
    was_training = model.training
    model.eval()
    for b in batches:
        model(*b) if isinstance(b, (tuple, list)) else model(b)
    model.train(was_training)
    return freeze(model)
