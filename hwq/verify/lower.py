"""Quantize a captured activation and lower a Conv2d/Linear layer to one integer GEMM.

The GEMM is ``Y[M, N] = X[M, K] . W[N, K]^T`` in the layout of :mod:`hwq.timing`:
a convolution's ``X`` rows are its im2col patches (``torch.nn.functional.unfold``:
input channel slowest, kernel column fastest), which matches the quantizer's conv weight
flattening ``w.reshape(out, -1)``; a linear layer's rows are its input vectors.
"""

from __future__ import annotations

import math
from typing import Any

from hwq.errors import UsageError


def quantize_activation(x: Any, act_bits: int) -> tuple[Any, int]:
    """Signed ``act_bits``-bit integer codes of float tensor ``x`` with a power-of-two scale.

    Returns ``(x_int int64, exponent)`` with ``x ~= x_int * 2**exponent``; the exponent is the
    smallest one for which ``max|x|`` fits ``2**(act_bits-1) - 1`` (round half to even, then
    saturate to ``[-2**(act_bits-1), 2**(act_bits-1) - 1]``).
    """
    import torch

    if act_bits < 2:
        raise UsageError(f"activation precision must be >= 2 bits, got {act_bits}")
    qmax = (1 << (act_bits - 1)) - 1
    amax = float(x.abs().max())
    exponent = math.ceil(math.log2(amax / qmax)) if amax > 0 else 0
    x_int = torch.round(x.to(torch.float64) * 2.0 ** -exponent).clamp(-qmax - 1, qmax).to(torch.int64)
    return x_int, exponent


def gemm_weight(module: Any) -> Any:
    """The float weight the GEMM uses: ``[N, ...]`` (group 0 of a grouped convolution)."""
    w = module.weight.detach()
    groups = getattr(module, "groups", 1)
    if groups > 1:
        w = w[: w.shape[0] // groups]
    return w


def lower_to_gemm(module: Any, x: Any) -> Any:
    """Rows ``X [M, K]`` of the GEMM that ``module`` (Conv2d or Linear) performs on input ``x``.

    Works on float or integer tensors (unfold only copies values). A grouped convolution is
    lowered for its first group only.
    """
    import torch
    import torch.nn.functional as F

    kind = type(module).__name__
    if kind == "Linear":
        return x.reshape(-1, module.in_features)
    if kind != "Conv2d":
        raise UsageError(f"cannot lower a {kind} to a GEMM; pick a Conv2d or Linear layer")
    if isinstance(module.padding, str) or module.padding_mode != "zeros":
        raise UsageError(f"convolution padding {module.padding!r}/{module.padding_mode} is not supported; "
                         "pick a layer with explicit zero padding")
    groups = module.groups
    if groups > 1:
        x = x[:, : x.shape[1] // groups]
    # unfold works on floating point only; every int64 code here is < 2**53, so float64 is exact.
    dtype = x.dtype
    cols = F.unfold(x.to(torch.float64), module.kernel_size, dilation=module.dilation,
                    padding=module.padding, stride=module.stride)  # [B, K, L]
    rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return rows.to(dtype)
