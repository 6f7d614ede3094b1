"""Fake-quant modules: quantized weights and activations in float, trainable with a straight-through estimator.

* :class:`ActQuant` — per-tensor activation quantizer, ``bits`` wide. Its scale is calibrated
  by a running absmax (``calibrating=True``, the default until :meth:`ActQuant.freeze`) or set
  with :meth:`ActQuant.set_scale`. If every calibration value was >= 0 the grid is unsigned
  ``[0, 2**bits - 1]`` (post-ReLU), else symmetric ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``.
  Nearest level, exact midpoint to the lower level (as for weights).
* :class:`QuantLinear`, :class:`QuantConv2d` — subclasses of ``nn.Linear``/``nn.Conv2d`` (same
  parameter names, so state dicts load unchanged) whose forward uses
  ``quantize_weight(weight, fmt, bits, group_size)`` and quantizes their input with ``ActQuant``.
* :class:`Add` / :class:`QuantAdd` — a residual add module models can use so a plan can
  quantize its output (``Add`` is a plain ``a + b``).

Gradients: weights use the plain STE (gradient of the identity); activations use the
clipped STE (zero outside the representable range).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hwq.quant.weights import quantize_weight


def _round_half_down(x: torch.Tensor) -> torch.Tensor:
    """Nearest integer, exact .5 to the lower integer."""
    return torch.ceil(x - 0.5)


class ActQuant(nn.Module):
    """Per-tensor activation fake-quantizer (``bits`` wide) with a running-absmax scale.

    Buffers: ``scale`` (real units per integer level; 0 until calibrated), ``absmax``,
    ``minimum`` (observed), ``calibrating`` (bool).
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        if not 2 <= bits <= 32:
            raise ValueError(f"activation bits must be 2..32, got {bits}")
        self.bits = bits
        self.register_buffer("absmax", torch.zeros((), dtype=torch.float64))
        self.register_buffer("minimum", torch.full((), float("inf"), dtype=torch.float64))
        self.register_buffer("scale", torch.zeros((), dtype=torch.float64))
        self.register_buffer("calibrating", torch.ones((), dtype=torch.bool))

    @property
    def signed(self) -> bool:
        """False when every calibration value was >= 0 (unsigned grid)."""
        return bool(self.minimum < 0) or not torch.isfinite(self.minimum)

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1) - 1) if self.signed else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2 ** self.bits - 1

    def _update_scale(self) -> None:
        self.scale.fill_(float(self.absmax) / self.qmax if float(self.absmax) > 0 else 0.0)

    def set_scale(self, scale: float, signed: bool = True) -> None:
        """Fix the scale (real units per level) and the sign of the grid; stops calibration."""
        self.minimum.fill_(-1.0 if signed else 0.0)
        self.scale.fill_(float(scale))
        self.absmax.fill_(float(scale) * self.qmax)
        self.calibrating.fill_(False)

    def freeze(self) -> None:
        """Stop updating the running absmax."""
        self.calibrating.fill_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(self.calibrating):
            with torch.no_grad():
                self.absmax.copy_(torch.maximum(self.absmax, x.detach().abs().max().to(torch.float64)))
                self.minimum.copy_(torch.minimum(self.minimum, x.detach().min().to(torch.float64)))
                self._update_scale()
        s = float(self.scale)
        if s <= 0:
            return x
        lo, hi = self.qmin * s, self.qmax * s
        q = _round_half_down(x / s).clamp(self.qmin, self.qmax) * s
        inside = (x >= lo) & (x <= hi)
        return torch.where(inside, x + (q - x).detach(), q.detach())

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scale={float(self.scale):.4g}, signed={self.signed}"


class _WeightQuantMixin:
    """Shared weight fake-quant with an eval-mode cache keyed on the weight's version."""

    fmt: str
    wbits: int
    group_size: int | None

    def _init_quant(self, fmt: str, bits: int, group_size: int | None, act_bits: int | None) -> None:
        self.fmt, self.wbits, self.group_size = fmt, bits, group_size
        self.act_quant = ActQuant(act_bits) if act_bits else None
        self._cache: tuple[int, int, torch.Tensor] | None = None

    def quantized_weight(self) -> torch.Tensor:
        """The fake-quantized weight; gradient flows to ``weight`` unchanged (STE)."""
        w: torch.Tensor = self.weight  # type: ignore[attr-defined]
        key = (w.data_ptr(), w._version)
        if self._cache is not None and self._cache[:2] == key:
            wq = self._cache[2]
        else:
            with torch.no_grad():
                wq = quantize_weight(w.detach(), self.fmt, self.wbits, group_size=self.group_size).to(w.dtype)
            self._cache = (*key, wq)
        return w + (wq - w).detach() if w.requires_grad and torch.is_grad_enabled() else wq

    def _quant_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_quant(x) if self.act_quant is not None else x


class QuantLinear(_WeightQuantMixin, nn.Linear):
    """``nn.Linear`` with fake-quantized weight (``fmt``/``bits``/``group_size``) and input (``act_bits``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, fmt: str, bits: int,
                 group_size: int | None = 128, act_bits: int | None = None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_quant(fmt, bits, group_size, act_bits)

    @classmethod
    def from_float(cls, m: nn.Linear, *, fmt: str, bits: int, group_size: int | None = 128,
                   act_bits: int | None = None) -> "QuantLinear":
        q = cls(m.in_features, m.out_features, m.bias is not None, fmt=fmt, bits=bits, group_size=group_size,
                act_bits=act_bits)
        q.to(device=m.weight.device, dtype=m.weight.dtype)
        q.weight = m.weight
        q.bias = m.bias
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self._quant_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{nn.Linear.extra_repr(self)}, fmt={self.fmt}{self.wbits}, group_size={self.group_size}"


class QuantConv2d(_WeightQuantMixin, nn.Conv2d):
    """``nn.Conv2d`` with fake-quantized weight (flattened ``[out, in*kh*kw]`` groups) and input."""

    @classmethod
    def from_float(cls, m: nn.Conv2d, *, fmt: str, bits: int, group_size: int | None = 128,
                   act_bits: int | None = None) -> "QuantConv2d":
        q = cls.__new__(cls)
        nn.Conv2d.__init__(q, m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                           dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                           padding_mode=m.padding_mode)
        q._init_quant(fmt, bits, group_size, act_bits)
        q.weight = m.weight
        q.bias = m.bias
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self._quant_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{nn.Conv2d.extra_repr(self)}, fmt={self.fmt}{self.wbits}, group_size={self.group_size}"


class Add(nn.Module):
    """Residual add ``a + b`` as a module, so a precision plan can name and quantize it."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class QuantAdd(Add):
    """Residual add whose output is quantized to ``act_bits`` (per-tensor scale, running absmax)."""

    def __init__(self, act_bits: int) -> None:
        super().__init__()
        self.act_quant = ActQuant(act_bits)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.act_quant(a + b)
