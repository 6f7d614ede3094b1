"""Sensitivity: Hutchinson traces against exact values, weight errors, the KL form and the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwq.cost import Choice
from hwq.quant import quantize_weight
from hwq.search.sensitivity import (compute_sensitivity, floor_traces, hutchinson_traces, kl_sensitivity,
                                    weight_errors)


class TwoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc1 = nn.Linear(16, 8, bias=False)
        self.fc2 = nn.Linear(8, 4, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.randn(8, 16, generator=g))
            self.fc2.weight.copy_(torch.randn(4, 8, generator=g))

    def forward(self, x):
        return self.fc2(self.fc1(x))


def test_hutchinson_matches_exact_gauss_newton_trace():
    """Linear net, loss 0.5*||f - f0||^2/B: Tr(H_W1) = ||W2||_F^2 * sum ||x||^2 / B, Tr(H_W2) = 4 * sum ||W1 x||^2 / B."""
    torch.manual_seed(0)
    model = TwoLinear()
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    w_tr, a_tr, inputs = hutchinson_traces(model, ["fc1", "fc2"], x, None, samples=300, seed=0)
    w1, w2 = model.fc1.weight.detach(), model.fc2.weight.detach()
    B = x.shape[0]
    exact_w1 = float((w2 ** 2).sum() * (x ** 2).sum() / B) / w1.numel()
    exact_w2 = float(4 * ((x @ w1.T) ** 2).sum() / B) / w2.numel()
    # activation blocks: H_x = (W2 W1)^T (W2 W1) / B per sample; H_h = W2^T W2 / B
    exact_a1 = float(((w2 @ w1) ** 2).sum()) / x[0].numel() / B
    exact_a2 = float((w2 ** 2).sum()) / 8 / B
    assert w_tr[0] == pytest.approx(exact_w1, rel=0.2)
    assert w_tr[1] == pytest.approx(exact_w2, rel=0.2)
    assert a_tr[0] == pytest.approx(exact_a1, rel=0.2)
    assert a_tr[1] == pytest.approx(exact_a2, rel=0.2)
    assert inputs[1].shape == (3, 8)


def test_weight_errors_and_mask():
    model = TwoLinear()
    choices = [Choice("int", 8, 8), Choice("int", 4, 8), Choice("mx", 4, 8)]
    err, allowed = weight_errors([model.fc1, model.fc2], choices, group_size=128)
    w = model.fc1.weight.detach()
    assert err[0, 1] == pytest.approx(float(((w - quantize_weight(w, "int", 4, group_size=None)) ** 2).sum()))
    assert err[0, 0] < err[0, 1]  # more bits, less error
    assert not allowed[1, 2]  # MX needs rows of a multiple of 32 values; fc2 has 8
    assert allowed[:, :2].all()


def test_floor_traces():
    assert floor_traces(np.array([2.0, -1.0, np.nan, 0.5])).tolist() == [2.0, 0.5, 0.5, 0.5]
    assert floor_traces(np.array([np.nan, -1.0])).tolist() == [0.0, 0.0]


def test_kl_orders_precisions():
    model = TwoLinear()
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(2))
    y = model(x).argmax(1)
    vals, allowed = kl_sensitivity(model, ["fc1", "fc2"], [Choice("int", 8, 8), Choice("int", 3, 4)], x, y, None)
    assert allowed.all() and (vals >= 0).all()
    assert (vals[:, 0] < vals[:, 1]).all()


def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    monkeypatch.setenv("HWQ_CACHE_DIR", str(tmp_path))
    model = TwoLinear()
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))
    choices = [Choice("int", 8, 8), Choice("int", 4, 4)]
    kw = dict(samples=2, progress=False, group_size=None)
    first = compute_sensitivity(model, ["fc1", "fc2"], choices, [x], **kw)
    second = compute_sensitivity(model, ["fc1", "fc2"], choices, [x], **kw)
    assert not first.cache_hit and second.cache_hit
    np.testing.assert_array_equal(first.values, second.values)
    assert (first.values[:, 1] > first.values[:, 0]).all()  # int4/a4 hurts more than int8/a8
    assert list(tmp_path.glob("sensitivity/*.npz"))
    # other data, other weights or other options: recomputed
    assert not compute_sensitivity(model, ["fc1", "fc2"], choices, [x + 1], **kw).cache_hit
    assert not compute_sensitivity(model, ["fc1", "fc2"], choices, [x], **{**kw, "samples": 3}).cache_hit
    with torch.no_grad():
        model.fc1.weight.mul_(2)
    assert not compute_sensitivity(model, ["fc1", "fc2"], choices, [x], **kw).cache_hit


def test_activation_trace_cross_entropy_is_gauss_newton():
    """With labels the activation trace is Tr(W^T (diag p - p p^T) W) per sample (softmax curvature)."""
    torch.manual_seed(0)
    model = nn.Linear(6, 5, bias=False)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1, 2, 3])
    _, a_tr, _ = hutchinson_traces(nn.Sequential(model), ["0"], x, y, samples=400, seed=1)
    w = model.weight.detach().double()
    p = torch.softmax(x.double() @ w.T, dim=-1)
    exact = sum(float(torch.trace((torch.diag(pi) - torch.outer(pi, pi)) @ w @ w.T)) for pi in p) / 4 / x.numel()
    assert a_tr[0] == pytest.approx(exact, rel=0.2)


def test_gauss_newton_weight_estimator_matches_exact_and_is_nonnegative():
    model = TwoLinear()
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    w_tr, _, _ = hutchinson_traces(model, ["fc1", "fc2"], x, None, samples=300, seed=0, weight_estimator="gn")
    w1, w2 = model.fc1.weight.detach(), model.fc2.weight.detach()
    assert w_tr[0] == pytest.approx(float((w2 ** 2).sum() * (x ** 2).sum() / 3) / w1.numel(), rel=0.2)
    assert w_tr[1] == pytest.approx(float(4 * ((x @ w1.T) ** 2).sum() / 3) / w2.numel(), rel=0.2)
    few, _, _ = hutchinson_traces(model, ["fc1", "fc2"], x, None, samples=1, seed=5, weight_estimator="gn")
    assert (few > 0).all()
