"""Digits CNN: committed checkpoint accuracy, torch.fx traceability, fixed-point conversion (QFX)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwq.datatypes import FixedFormat
from hwq.quant.fixed_modules import (FixedActivation, FixedAdd, FixedBatchNorm2d, FixedInput, FixedQuantConv2d,
                                     FixedQuantLinear, LearnedFixedQuantizer, calibrate_fixed, fixed_module_for,
                                     fixed_quantizers, to_fixed_point)
from models.digits_cnn import DigitsCNN, calibration_batches, evaluate, load_checkpoint, load_digits_split


@pytest.fixture(scope="module")
def model() -> DigitsCNN:
    return load_checkpoint()


def test_split_shapes_and_ranges() -> None:
    x_tr, y_tr, x_te, y_te = load_digits_split()
    assert x_tr.shape == (1257, 1, 8, 8) and x_te.shape == (540, 1, 8, 8)
    assert float(x_tr.min()) == 0.0 and float(x_tr.max()) == 1.0
    assert set(y_te.tolist()) == set(range(10))
    assert torch.equal(load_digits_split()[3], y_te)  # fixed split


def test_checkpoint_accuracy(model: DigitsCNN) -> None:
    assert 10_000 <= sum(p.numel() for p in model.parameters()) <= 30_000
    assert evaluate(model) > 0.97  # measured 0.9963 (python -m models.train_digits)


def test_fx_traceable(model: DigitsCNN) -> None:
    gm = torch.fx.symbolic_trace(model)
    x = calibration_batches(1)[0]
    assert torch.equal(gm(x), model(x))
    assert "add" in dict(model.named_modules())  # the explicit residual add a plan can name


def test_fixed_point_model_every_tensor_on_grid(model: DigitsCNN) -> None:
    q = to_fixed_point(model, 6)
    assert isinstance(q, FixedInput)
    kinds = {type(m) for m in q.modules()}
    assert {FixedQuantConv2d, FixedQuantLinear, FixedBatchNorm2d, FixedActivation, FixedAdd} <= kinds
    assert not any(type(m) in (nn.Conv2d, nn.BatchNorm2d, nn.Linear) for m in q.modules())
    calibrate_fixed(q, calibration_batches(2))
    seen = []

    def check(mod: LearnedFixedQuantizer, _inp, out) -> None:
        fmt = mod.fmt
        codes = out.detach().double() * 2.0 ** fmt.frac_bits
        assert torch.equal(codes, torch.round(codes))
        assert fmt.min_code <= codes.min() and codes.max() <= fmt.max_code
        seen.append(mod)

    hooks = [m.register_forward_hook(check) for _, m in fixed_quantizers(q)]
    acc = evaluate(q)
    for h in hooks:
        h.remove()
    assert len(seen) == len(fixed_quantizers(q)) == 23
    assert acc > 0.95  # measured 0.9944 (python -m hwq.reports.qfx_digits)


def test_khot_model_weights_have_k_terms(model: DigitsCNN) -> None:
    q = to_fixed_point(model, 8, k_hot=1)
    conv = q.model.block_conv1
    codes = (conv.weight_quant(conv.weight) * 2.0 ** conv.weight_quant.frac_bits).round().abs().to(torch.int64)
    nz = codes[codes > 0]
    assert nz.numel() > 0 and torch.all((nz & (nz - 1)) == 0)


def test_fixed_module_for_layer_precision_formats(model: DigitsCNN) -> None:
    wf, af = FixedFormat(8, 1, rounding="RND", overflow="SAT"), FixedFormat(8, 4, rounding="RND", overflow="SAT")
    conv = fixed_module_for(model.stem_conv, weight_fixed=wf, act_fixed=af)
    assert isinstance(conv, FixedQuantConv2d) and conv.act_quant.fmt == af
    assert set(conv.state_dict()) >= set(model.stem_conv.state_dict())  # same parameter names
    lin = fixed_module_for(model.fc, weight_fixed=FixedFormat(8, 1, k_hot=2))
    assert isinstance(lin, FixedQuantLinear) and lin.weight_quant.k_hot == 2
    assert isinstance(fixed_module_for(model.stem_bn, weight_fixed=wf, act_fixed=af), FixedBatchNorm2d)
    assert isinstance(fixed_module_for(model.add, act_fixed=af), FixedAdd)
    assert isinstance(fixed_module_for(model.stem_relu, act_fixed=af), FixedActivation)
    assert fixed_module_for(model.pool, weight_fixed=wf) is None
    act_only = fixed_module_for(model.block_conv1, act_fixed=af)  # float weights, fixed-point input
    assert act_only.weight_quant is None and act_only.act_quant.fmt == af
    x = calibration_batches(1)[0]
    y = conv(x)
    assert y.shape == model.stem_conv(x).shape
