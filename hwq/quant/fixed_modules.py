"""QFX-style fixed-point fake-quant modules with learned binary points (DESIGN.md section 2).

Every tensor that would be an ``ap_fixed`` in the HLS deployment goes through a
:class:`LearnedFixedQuantizer`: conv/linear weights and biases, BatchNorm scale and shift,
layer outputs, the residual add. Each quantizer keeps the total width W fixed and learns the
number of fractional bits ``f`` (so ``I = W - round(f)``) per tensor.

Gradients (what we chose, LSQ-style; Esser et al., "Learned Step Size Quantization"):

* values: straight-through inside the representable range ``[min_code, max_code] * 2**-F``,
  zero outside (for every overflow mode: a wrapped or saturated value carries no useful slope);
* binary point: the forward value is ``s * code(x / s)`` with ``s = 2**-round(f)``; the LSQ
  derivative ``d out / d s`` is ``code - x/s`` (the rounding error, in LSBs) inside the range and
  the clip code ``min_code``/``max_code`` outside; ``d s / d f = -ln(2) * s`` with a straight-through
  ``round``; the sum over the tensor is scaled by ``1 / sqrt(numel * max_code)`` (LSQ's gradient scale).

Default modes are ``RND`` / ``SAT`` (round half up, saturate), the usual choice for trained
fixed-point models; any ``ap_fixed`` mode may be given. ``FixedFormat.k_hot`` restricts a
weight quantizer to K-hot codes (:mod:`hwq.quant.khot`; nearest K-hot code, saturating).

Entry points: :func:`fixed_module_for` (one module from a ``LayerPrecision``'s ``weight_fixed`` /
``act_fixed``, used by ``hwq.quant.quantize_model``), :func:`to_fixed_point` (a whole
Conv/BN/ReLU/Add/Linear model, e.g. ``models.digits_cnn.DigitsCNN``), :func:`calibrate_fixed`
(MSE-optimal binary points of the activation quantizers from calibration batches).
"""

from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from hwq.datatypes import FixedFormat
from hwq.quant.fixed import _codes_f64
from hwq.quant.khot import khot_fixed_codes

__all__ = ["LearnedFixedQuantizer", "FixedActivation", "FixedQuantConv2d", "FixedQuantLinear",
           "FixedBatchNorm2d", "FixedAdd", "FixedInput", "fixed_module_for", "to_fixed_point",
           "calibrate_fixed", "best_frac_bits", "fixed_quantizers"]


def _fixed_codes(y_fmt: FixedFormat, x: torch.Tensor) -> torch.Tensor:
    """Float64 integer codes of ``x`` in ``y_fmt`` (K-hot aware)."""
    if y_fmt.k_hot is not None:
        return khot_fixed_codes(x, y_fmt).to(torch.float64)
    return _codes_f64(x, y_fmt)


def best_frac_bits(x: torch.Tensor, width: int, *, signed: bool = True, rounding: str = "RND",
                   overflow: str = "SAT", k_hot: int | None = None, extra: int = 4) -> int:
    """Fractional bits F minimising the squared cast error of ``x`` (``W`` fixed).

    Candidates: from one bit more range than the absmax needs to ``extra`` bits less; ties go
    to the larger range.
    """
    x = x.detach().to(torch.float64).reshape(-1)
    absmax = float(x.abs().max()) if x.numel() else 0.0
    if absmax == 0.0 or not math.isfinite(absmax):
        return width - int(signed)
    i_fit = math.ceil(math.log2(absmax)) + int(signed)  # 2**(I - signed) >= absmax
    f_fit = width - i_fit
    best, best_err = f_fit - 1, math.inf
    for f in range(f_fit - 1, f_fit + extra + 1):
        fmt = FixedFormat(width, width - f, signed, rounding, overflow, k_hot)
        err = float(((_fixed_codes(fmt, x) * 2.0 ** -f - x) ** 2).sum())
        if err < best_err:
            best, best_err = f, err
    return best


class _FixedQuantFn(torch.autograd.Function):
    """Fixed-point cast with STE for values and the LSQ gradient for the fractional bits."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, f: torch.Tensor, fmt_args: tuple) -> torch.Tensor:  # type: ignore[override]
        width, signed, rounding, overflow, k_hot = fmt_args
        frac = int(torch.round(f.detach()).item())
        fmt = FixedFormat(width, width - frac, signed, rounding, overflow, k_hot)
        y = x.detach().to(torch.float64) * 2.0 ** frac
        codes = _fixed_codes(fmt, x)
        lo, hi = float(fmt.min_code), float(fmt.max_code)
        below, above = y < lo, y > hi
        # LSQ d out / d s (in LSB units): rounding error inside, the clip code outside.
        ds = torch.where(below, torch.full_like(y, lo), torch.where(above, torch.full_like(y, hi), codes - y))
        inside = ~(below | above)
        ctx.save_for_backward(inside, ds)
        ctx.frac = frac
        ctx.grad_scale = 1.0 / math.sqrt(max(x.numel(), 1) * max(hi, 1.0))
        return (codes * 2.0 ** -frac).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        inside, ds = ctx.saved_tensors
        grad_x = grad_out * inside.to(grad_out.dtype)
        s = 2.0 ** -ctx.frac
        dout_df = ds * (-math.log(2.0) * s)
        grad_f = (grad_out.to(torch.float64) * dout_df).sum() * ctx.grad_scale
        return grad_x, grad_f.to(torch.float32).reshape(()), None


class LearnedFixedQuantizer(nn.Module):
    """Per-tensor ``ap_fixed<W, W - round(f)>`` fake-quantizer with a learned binary point ``f``.

    Args:
        width: W, total bits (1..32), fixed.
        init_frac_bits: initial fractional bits F (the parameter ``f``, a real number).
        signed: ``ap_fixed`` or ``ap_ufixed``.
        rounding, overflow: ``ap_fixed`` modes (``hwq.datatypes.ROUNDING_MODES`` / ``OVERFLOW_MODES``).
        k_hot: restrict codes to at most K nonzero signed power-of-two terms (weights).
        learn: whether ``f`` is a trainable parameter (else a frozen one).

    Calibration: after :meth:`start_calibration`, forward passes return ``x`` unchanged and
    record a sample of it; :meth:`finish_calibration` sets ``f`` to :func:`best_frac_bits`.
    """

    def __init__(self, width: int, init_frac_bits: float, signed: bool = True, rounding: str = "RND",
                 overflow: str = "SAT", k_hot: int | None = None, learn: bool = True) -> None:
        super().__init__()
        FixedFormat(width, width - round(init_frac_bits), signed, rounding, overflow, k_hot)  # validate
        self.width, self.signed, self.rounding, self.overflow, self.k_hot = width, signed, rounding, overflow, k_hot
        self.f = nn.Parameter(torch.tensor(float(init_frac_bits)), requires_grad=learn)
        self._observing = False
        self._samples: list[torch.Tensor] = []

    @classmethod
    def from_format(cls, fmt: FixedFormat, learn: bool = True) -> "LearnedFixedQuantizer":
        """A quantizer starting at ``fmt``'s binary point, with its modes and ``k_hot``."""
        return cls(fmt.width, fmt.frac_bits, fmt.signed, fmt.rounding, fmt.overflow, fmt.k_hot, learn)

    @property
    def frac_bits(self) -> int:
        """Current integer fractional bits F = round(f)."""
        return int(torch.round(self.f.detach()).item())

    @property
    def fmt(self) -> FixedFormat:
        """The ``ap_fixed`` type this quantizer currently implements."""
        return FixedFormat(self.width, self.width - self.frac_bits, self.signed, self.rounding, self.overflow,
                           self.k_hot)

    def init_from(self, x: torch.Tensor) -> None:
        """Set ``f`` to the MSE-optimal integer fractional bits for ``x``."""
        f = best_frac_bits(x, self.width, signed=self.signed, rounding=self.rounding, overflow=self.overflow,
                           k_hot=self.k_hot)
        with torch.no_grad():
            self.f.fill_(float(f))

    def start_calibration(self) -> None:
        self._observing, self._samples = True, []

    def finish_calibration(self) -> None:
        if self._samples:
            self.init_from(torch.cat(self._samples))
        self._observing, self._samples = False, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._observing:
            flat = x.detach().reshape(-1)
            if flat.numel() > 65536:
                gen = torch.Generator().manual_seed(len(self._samples))
                flat = flat[torch.randint(flat.numel(), (65536,), generator=gen)]
            self._samples.append(flat.to(torch.float64).cpu())
            return x
        return _FixedQuantFn.apply(x, self.f, (self.width, self.signed, self.rounding, self.overflow, self.k_hot))

    def extra_repr(self) -> str:
        return f"{self.fmt.name}, f={float(self.f.detach()):.2f}"


def _act_quant(fmt: FixedFormat | None) -> LearnedFixedQuantizer | None:
    return LearnedFixedQuantizer.from_format(fmt) if fmt is not None else None


class FixedActivation(nn.Module):
    """Activation quantizer: ``fn(x)`` (default identity) then a W-bit fixed-point cast.

    Typical use: ``FixedActivation(fmt, nn.ReLU())`` with an unsigned ``fmt`` after a ReLU.
    """

    def __init__(self, fmt: FixedFormat, fn: nn.Module | None = None) -> None:
        super().__init__()
        self.fn = fn if fn is not None else nn.Identity()
        self.quant = LearnedFixedQuantizer.from_format(fmt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant(self.fn(x))


class FixedInput(nn.Module):
    """Quantizes a model's input, then runs the model (the model input is an ``ap_fixed`` port too)."""

    def __init__(self, model: nn.Module, fmt: FixedFormat) -> None:
        super().__init__()
        self.input_quant = LearnedFixedQuantizer.from_format(fmt)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.input_quant(x))


class _FixedWeightMixin:
    """Shared by the conv and linear modules: weight, bias, input and output quantizers."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def _init_fixed(self, weight_fixed: FixedFormat | None, act_fixed: FixedFormat | None,
                    out_fixed: FixedFormat | None, init: str) -> None:
        if init not in ("data", "format"):
            raise ValueError(f"init must be 'data' or 'format', got {init!r}")
        self.weight_quant = LearnedFixedQuantizer.from_format(weight_fixed) if weight_fixed is not None else None
        self.bias_quant = None
        if weight_fixed is not None and self.bias is not None:
            bias_fmt = FixedFormat(weight_fixed.width, weight_fixed.int_bits, True, weight_fixed.rounding,
                                   weight_fixed.overflow)
            self.bias_quant = LearnedFixedQuantizer.from_format(bias_fmt)
        self.act_quant = _act_quant(act_fixed)
        self.out_quant = _act_quant(out_fixed)
        if init == "data":
            if self.weight_quant is not None:
                self.weight_quant.init_from(self.weight)
            if self.bias_quant is not None:
                self.bias_quant.init_from(self.bias)

    def _qparams(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.weight_quant(self.weight) if self.weight_quant is not None else self.weight
        b = self.bias_quant(self.bias) if self.bias_quant is not None and self.bias is not None else self.bias
        return w, b


class FixedQuantConv2d(_FixedWeightMixin, nn.Conv2d):
    """``nn.Conv2d`` (same parameter names) with fixed-point weights/bias, optional input/output casts.

    ``act_fixed`` quantizes the input (as ``act_bits`` does in ``QuantConv2d``), ``out_fixed`` the
    output (QFX: every layer output is an ``ap_fixed``).
    """

    @classmethod
    def from_float(cls, m: nn.Conv2d, *, weight_fixed: FixedFormat | None, act_fixed: FixedFormat | None = None,
                   out_fixed: FixedFormat | None = None, init: str = "data") -> "FixedQuantConv2d":
        q = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                m.bias is not None, m.padding_mode)
        q.load_state_dict(m.state_dict())
        q.to(m.weight.device)
        q._init_fixed(weight_fixed, act_fixed, out_fixed, init)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quant is not None:
            x = self.act_quant(x)
        w, b = self._qparams()
        y = self._conv_forward(x, w, b)
        return self.out_quant(y) if self.out_quant is not None else y


class FixedQuantLinear(_FixedWeightMixin, nn.Linear):
    """``nn.Linear`` (same parameter names) with fixed-point weights/bias, optional input/output casts."""

    @classmethod
    def from_float(cls, m: nn.Linear, *, weight_fixed: FixedFormat | None, act_fixed: FixedFormat | None = None,
                   out_fixed: FixedFormat | None = None, init: str = "data") -> "FixedQuantLinear":
        q = cls(m.in_features, m.out_features, m.bias is not None)
        q.load_state_dict(m.state_dict())
        q.to(m.weight.device)
        q._init_fixed(weight_fixed, act_fixed, out_fixed, init)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quant is not None:
            x = self.act_quant(x)
        w, b = self._qparams()
        y = F.linear(x, w, b)
        return self.out_quant(y) if self.out_quant is not None else y


class FixedBatchNorm2d(nn.Module):
    """Inference BatchNorm as a fixed-point per-channel ``x * scale + shift``.

    ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale`` (trainable parameters)
    are each cast to their own W-bit ``ap_fixed`` (learned binary point); the output is cast
    with ``out_fixed`` if given.
    """

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, param_fixed: FixedFormat,
                 out_fixed: FixedFormat | None = None, init: str = "data") -> None:
        super().__init__()
        self.scale = nn.Parameter(scale.detach().clone())
        self.shift = nn.Parameter(shift.detach().clone())
        self.scale_quant = LearnedFixedQuantizer.from_format(param_fixed)
        self.shift_quant = LearnedFixedQuantizer.from_format(param_fixed)
        if init == "data":
            self.scale_quant.init_from(self.scale)
            self.shift_quant.init_from(self.shift)
        self.out_quant = _act_quant(out_fixed)

    @classmethod
    def from_float(cls, bn: nn.BatchNorm2d, *, param_fixed: FixedFormat, out_fixed: FixedFormat | None = None,
                   init: str = "data") -> "FixedBatchNorm2d":
        var = bn.running_var if bn.running_var is not None else torch.ones(bn.num_features)
        mean = bn.running_mean if bn.running_mean is not None else torch.zeros(bn.num_features)
        gamma = bn.weight if bn.weight is not None else torch.ones(bn.num_features)
        beta = bn.bias if bn.bias is not None else torch.zeros(bn.num_features)
        scale = gamma.detach() / torch.sqrt(var + bn.eps)
        shift = beta.detach() - mean * scale
        return cls(scale, shift, param_fixed, out_fixed, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.scale_quant(self.scale).reshape(1, -1, 1, 1)
        b = self.shift_quant(self.shift).reshape(1, -1, 1, 1)
        y = x * a + b
        return self.out_quant(y) if self.out_quant is not None else y


class FixedAdd(nn.Module):
    """Residual add ``a + b`` whose output is cast to ``fmt`` (learned binary point)."""

    def __init__(self, fmt: FixedFormat) -> None:
        super().__init__()
        self.quant = LearnedFixedQuantizer.from_format(fmt)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.quant(a + b)


def _is_add(m: nn.Module) -> bool:
    """An explicit residual-add module (``hwq.quant.modules.Add`` or any module named ``Add``)."""
    return type(m).__name__ == "Add"


def fixed_module_for(module: nn.Module, weight_fixed: FixedFormat | None = None,
                     act_fixed: FixedFormat | None = None, out_fixed: FixedFormat | None = None) -> nn.Module | None:
    """The fixed-point replacement of one module, or None if it has nothing to quantize.

    * ``nn.Conv2d`` / ``nn.Linear``: :class:`FixedQuantConv2d` / :class:`FixedQuantLinear` (``weight_fixed``
      casts weight and bias, binary points from the data by least squares; ``act_fixed`` casts the input,
      ``out_fixed`` the output; a missing format leaves that tensor float);
    * ``nn.BatchNorm2d`` + ``weight_fixed``: :class:`FixedBatchNorm2d` (params), output cast ``act_fixed``;
    * ``nn.ReLU`` + ``act_fixed``: ReLU then the cast (:class:`FixedActivation`);
    * an ``Add`` module + ``act_fixed``: :class:`FixedAdd`.
    """
    has_fmt = weight_fixed is not None or act_fixed is not None or out_fixed is not None
    if isinstance(module, nn.Conv2d) and has_fmt:
        return FixedQuantConv2d.from_float(module, weight_fixed=weight_fixed, act_fixed=act_fixed, out_fixed=out_fixed)
    if isinstance(module, nn.Linear) and has_fmt:
        return FixedQuantLinear.from_float(module, weight_fixed=weight_fixed, act_fixed=act_fixed, out_fixed=out_fixed)
    if isinstance(module, nn.BatchNorm2d) and weight_fixed is not None:
        pf = FixedFormat(weight_fixed.width, weight_fixed.int_bits, True, weight_fixed.rounding, weight_fixed.overflow)
        return FixedBatchNorm2d.from_float(module, param_fixed=pf, out_fixed=act_fixed or out_fixed)
    if isinstance(module, nn.ReLU) and act_fixed is not None:
        return FixedActivation(act_fixed, nn.ReLU())
    if _is_add(module) and act_fixed is not None:
        return FixedAdd(act_fixed)
    return None


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def to_fixed_point(model: nn.Module, width: int, *, rounding: str = "RND", overflow: str = "SAT",
                   k_hot: int | None = None, weight_width: int | None = None, act_width: int | None = None,
                   quantize_input: bool = True) -> nn.Module:
    """A copy of ``model`` with every tensor in ``ap_fixed`` (QFX): weights, biases, BN, activations, adds.

    Conv2d/Linear: weights (``weight_width`` bits, default ``width``; K-hot if ``k_hot``) and biases
    cast, output cast to a signed ``act_width``-bit type (default ``width``). BatchNorm2d: scale and
    shift cast, output cast. ReLU: output cast to an unsigned type. ``Add`` modules: output cast.
    MaxPool/flatten keep values on the grid, so they need no cast. With ``quantize_input`` the
    input is cast to an unsigned type (the model is wrapped in :class:`FixedInput`).

    Binary points start from the weights (MSE) and from 4 fractional bits for activations; call
    :func:`calibrate_fixed` with data before evaluating (post-training) or training (QAT).
    """
    ww, aw = weight_width or width, act_width or width
    q = copy.deepcopy(model)
    wf = FixedFormat(ww, 1, True, rounding, overflow, k_hot)
    pf = FixedFormat(ww, 1, True, rounding, overflow)
    act_s = FixedFormat(aw, max(aw - 4, -32), True, rounding, overflow)
    act_u = FixedFormat(aw, max(aw - 4, -32), False, rounding, overflow)
    for name, m in list(q.named_modules()):
        if not name:
            continue
        if isinstance(m, nn.Conv2d):
            new: nn.Module = FixedQuantConv2d.from_float(m, weight_fixed=wf, out_fixed=act_s)
        elif isinstance(m, nn.Linear):
            new = FixedQuantLinear.from_float(m, weight_fixed=wf, out_fixed=act_s)
        elif isinstance(m, nn.BatchNorm2d):
            new = FixedBatchNorm2d.from_float(m, param_fixed=pf, out_fixed=act_s)
        elif isinstance(m, nn.ReLU):
            new = FixedActivation(act_u, nn.ReLU())
        elif _is_add(m):
            new = FixedAdd(act_s)
        else:
            continue
        _set_submodule(q, name, new)
    return FixedInput(q, act_u) if quantize_input else q


def fixed_quantizers(model: nn.Module) -> list[tuple[str, LearnedFixedQuantizer]]:
    """Every :class:`LearnedFixedQuantizer` in ``model`` with its qualified name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LearnedFixedQuantizer)]


def _is_param_quantizer(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("weight_quant", "bias_quant", "scale_quant", "shift_quant")


def _run(model: nn.Module, batch) -> None:
    model(*batch) if isinstance(batch, (tuple, list)) else model(batch)


@torch.no_grad()
def calibrate_fixed(model: nn.Module, batches: Iterable[torch.Tensor], *, sequential: bool = True) -> nn.Module:
    """Set every activation quantizer's binary point to the MSE-optimal one on ``batches``.

    ``batches``: tensors, or tuples of positional inputs.

    Parameter quantizers (weights, biases, BN) keep their data-derived binary points. With
    ``sequential`` the activation quantizers are calibrated one at a time in forward order,
    each seeing the outputs of the already-quantized layers before it (closer to deployment).
    """
    batches = list(batches)
    was_training = model.training
    model.eval()
    acts = [(n, m) for n, m in fixed_quantizers(model) if not _is_param_quantizer(n)]
    if sequential:
        order: list[LearnedFixedQuantizer] = []
        hooks = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod) if mod not in order else None)
                 for _, m in acts]
        _run(model, batches[0])
        for h in hooks:
            h.remove()
        for m in order:
            m.start_calibration()
            for b in batches:
                _run(model, b)
            m.finish_calibration()
    else:
        for _, m in acts:
            m.start_calibration()
        for b in batches:
            _run(model, b)
        for _, m in acts:
            m.finish_calibration()
    model.train(was_training)
    return model
