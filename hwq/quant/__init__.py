"""Quantizers: weight formats (INT, FP, BitMoD, ANT, MX), ap_fixed fixed point, fake-quant modules.

Public API (docs/CONTRACTS.md): :func:`quantize_weight`, :func:`quantize_weight_codes`,
:class:`QuantizedWeight`, :func:`fixed_point`, :class:`LayerPrecision`, :func:`quantize_model`.
Submodules import torch; ``fixed_point`` and the model helpers are imported lazily.
"""

from __future__ import annotations

from typing import Any

from hwq.quant.weights import QuantizedWeight, quantize_weight, quantize_weight_codes, weight_error

__all__ = ["QuantizedWeight", "quantize_weight", "quantize_weight_codes", "weight_error", "fixed_point",
           "LayerPrecision", "quantize_model", "calibrate"]

_LAZY = {"fixed_point": "hwq.quant.fixed", "LayerPrecision": "hwq.quant.model",
         "quantize_model": "hwq.quant.model", "calibrate": "hwq.quant.model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hwq.quant' has no attribute {name!r}")
