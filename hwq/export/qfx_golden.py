"""Integer golden model of a QFX network (numpy int64, no floats between the input cast and the output).

``qfx_golden(model, q, x) -> numpy float64 outputs``: every tensor is an ``ap_fixed`` code with its
fractional bits F; each operation is exact integer arithmetic, and every cast to a plan type is
:func:`hwq.golden.requantize` (the ap_fixed rounding and overflow of DESIGN.md section 2, integers only):

* input: ``hwq.quant.fixed.fixed_point_codes`` of the float input (the one float -> code step);
* Conv2d / Linear: im2col, ``sum x_code * w_code`` (F = Fx + Fw) plus the bias aligned to that F,
  cast to the layer's output type;
* BatchNorm2d: ``x_code * scale_code + shift`` aligned (F = Fx + Fscale), cast;
* ReLU: ``max(code, 0)``, cast; hwq ``Add``: both operands aligned to the larger F, summed, cast;
* MaxPool2d: max of codes; flatten: a reshape.

It is independent of the float fake-quant arithmetic of ``hwq.quant.fixed_modules``: the check of
``hwq export --to hls4ml --check`` compares hls4ml's emulation with both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwq.datatypes import FixedFormat
from hwq.errors import UsageError
from hwq.golden import requantize


def _codes(values: Any, frac: int) -> np.ndarray:
    """Integer codes of on-grid float values (exact: the values are dyadic with ``frac`` bits)."""
    v = np.asarray(values, dtype=np.float64) * 2.0 ** frac
    c = np.rint(v)
    if not np.array_equal(c, v):
        raise ValueError("parameter is not on its fixed-point grid")
    return c.astype(np.int64)


def _align(code: np.ndarray, frac: int, to: int) -> np.ndarray:
    if to < frac:
        raise ValueError("alignment only adds fractional bits")
    return code << (to - frac)


def _cast(code: np.ndarray, frac: int, fmt: FixedFormat) -> tuple[np.ndarray, int]:
    return requantize(code, 1, frac, fmt), fmt.frac_bits


def _im2col(x: np.ndarray, m) -> tuple[np.ndarray, int, int]:
    """Rows ``[N*OH*OW, C/groups*KH*KW]`` per group of an NCHW int64 tensor for Conv2d ``m``."""
    n, c, h, w = x.shape
    kh, kw = m.kernel_size
    sh, sw = m.stride
    ph, pw = m.padding
    dh, dw = m.dilation
    if m.padding_mode != "zeros":
        raise UsageError(f"golden model: conv padding_mode {m.padding_mode!r} is not modelled")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw]
    return cols, oh, ow


def qfx_golden(model, q, x) -> np.ndarray:
    """Outputs (float64 values of the final codes) of QFX model ``q`` (``hwq.export.qfx_plan.qfx_model``
    of ``model``) on float input batch ``x``, computed in integers (module docstring)."""
    import torch
    from torch import nn

    from hwq.export.hls4ml import _graphs, deployment_model
    from hwq.quant.fixed import fixed_point_codes
    from hwq.quant.fixed_modules import fixed_quantizers
    from hwq.quant.modules import Add

    fmts = {n: m.fmt for n, m in fixed_quantizers(q)}
    dep = deployment_model(model, q)
    mods = dict(dep.named_modules())
    _, graph = _graphs(dep)
    env: dict[str, tuple[np.ndarray, int]] = {}
    out = None
    for node in graph.nodes:
        if node.op == "placeholder":
            f = fmts["input_quant"]
            env[node.name] = (fixed_point_codes(torch.as_tensor(x), f.width, f.int_bits, signed=f.signed,
                                                rounding=f.rounding, overflow=f.overflow).numpy(), f.frac_bits)
            continue
        if node.op == "output":
            out = env[node.args[0].name]
            break
        args = [env[a.name] for a in node.all_input_nodes]
        mod = mods.get(node.target) if node.op == "call_module" else None
        key = f"model.{node.target}" if mod is not None else ""
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            (xc, fx) = args[0]
            fw = fmts[f"{key}.weight_quant"].frac_bits
            wc = _codes(mod.weight.detach().numpy(), fw)
            if isinstance(mod, nn.Conv2d):
                cols, oh, ow = _im2col(xc, mod)
                n, g = xc.shape[0], mod.groups
                cg, og = xc.shape[1] // g, mod.out_channels // g
                cols = cols.reshape(n, g, cg * mod.kernel_size[0] * mod.kernel_size[1], oh * ow)
                wg = wc.reshape(g, og, -1)
                acc = np.einsum("ngkp,gok->ngop", cols, wg, dtype=np.int64).reshape(n, mod.out_channels, oh, ow)
                bshape: tuple = (1, -1, 1, 1)
            else:
                acc = np.einsum("...k,ok->...o", xc, wc, dtype=np.int64)
                bshape = (1, -1)
            frac = fx + fw
            if mod.bias is not None:
                bf = fmts.get(f"{key}.bias_quant", fmts[f"{key}.weight_quant"]).frac_bits
                bc = _codes(mod.bias.detach().numpy(), bf)
                to = max(frac, bf)
                acc, frac = _align(acc, frac, to) + _align(bc, bf, to).reshape(bshape), to
            env[node.name] = _cast(acc, frac, fmts[f"{key}.out_quant"])
        elif isinstance(mod, nn.BatchNorm2d):
            (xc, fx) = args[0]
            fa, fb = fmts[f"{key}.scale_quant"].frac_bits, fmts[f"{key}.shift_quant"].frac_bits
            a = _codes(mod.weight.detach().numpy(), fa).reshape(1, -1, 1, 1)
            b = _codes(mod.bias.detach().numpy(), fb).reshape(1, -1, 1, 1)
            prod, frac = xc * a, fx + fa
            to = max(frac, fb)
            env[node.name] = _cast(_align(prod, frac, to) + _align(b, fb, to), to, fmts[f"{key}.out_quant"])
        elif isinstance(mod, nn.ReLU):
            (xc, fx) = args[0]
            env[node.name] = _cast(np.maximum(xc, 0), fx, fmts[f"{key}.quant"])
        elif isinstance(mod, Add):
            (ac, fa), (bc, fb) = args
            to = max(fa, fb)
            env[node.name] = _cast(_align(ac, fa, to) + _align(bc, fb, to), to, fmts[f"{key}.quant"])
        elif isinstance(mod, nn.MaxPool2d):
            (xc, fx) = args[0]
            k = mod.kernel_size if isinstance(mod.kernel_size, int) else mod.kernel_size[0]
            s = mod.stride if isinstance(mod.stride, int) else mod.stride[0]
            if k != s or mod.padding not in (0, (0, 0)):
                raise UsageError("golden model: only non-overlapping, unpadded MaxPool2d is modelled")
            n, c, h, w = xc.shape
            v = xc[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k)
            env[node.name] = (v.max(axis=(3, 5)), fx)
        elif node.op == "call_function" and node.target is torch.flatten:
            (xc, fx) = args[0]
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            env[node.name] = (xc.reshape(xc.shape[:start] + (-1,)), fx)
        else:
            raise UsageError(f"golden model: node {node.name} ({node.target}) is not modelled")
    if out is None:
        raise UsageError("golden model: the graph has no output")
    codes, frac = out
    return codes.astype(np.float64) * 2.0 ** -frac
