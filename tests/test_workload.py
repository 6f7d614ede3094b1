"""Workload capture with torch.fx (hwq.workload) and the model registry (models.registry)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwq.errors import UsageError
from hwq.workload import capture
from models.registry import MODEL_NAMES, get_recipe


def test_resnet50_numbers():
    recipe = get_recipe("resnet50")
    model = recipe.build("random")
    assert sum(p.numel() for p in model.parameters()) == 25_557_032
    wl = capture(model, recipe.example_input())
    assert wl.macs == 4_089_184_256
    assert wl.count("conv") == 53 and wl.count("linear") == 1 and len(wl.layers) == 54
    assert wl.weights == 25_502_912  # conv + fc weights (fc bias and BatchNorm excluded)
    conv1 = wl.layers[0]
    assert (conv1.name, conv1.m, conv1.k, conv1.n, conv1.stride) == ("conv1", 112 * 112, 3 * 7 * 7, 64, (2, 2))
    fc = wl.layer("fc")
    assert (fc.m, fc.k, fc.n, fc.weights) == (1, 2048, 1000, 2_048_000)
    # every bottleneck with a projection shortcut ties conv3 to the downsample conv
    assert ("layer1.0.conv3", "layer1.0.downsample.0") in wl.residual_groups
    assert len(wl.residual_groups) == 4
    assert ("layer1.0.conv1", "layer1.0.downsample.0") in wl.shared_input_groups
    kinds = {e.kind for e in wl.elementwise}
    assert {"add", "batchnorm2d", "relu", "maxpool2d", "adaptiveavgpool2d"} <= kinds
    assert sum(1 for e in wl.elementwise if e.kind == "add") == 16


class _Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.gc = nn.Conv2d(8, 12, 1, groups=4)

    def forward(self, x):
        return self.gc(torch.relu(self.dw(x)))


def test_grouped_and_depthwise_conv():
    wl = capture(_Grouped().eval(), torch.randn(2, 8, 10, 10))
    dw, gc = wl.layers
    # depthwise: 2 images x 5x5 outputs; k = 8/8 x 3x3; n = 8 channels in 8 groups
    assert (dw.kind, dw.m, dw.k, dw.n, dw.groups, dw.stride) == ("conv", 50, 9, 8, 8, (2, 2))
    assert dw.macs == 50 * 9 * 8 and dw.weights == 72 and dw.in_elems == 2 * 8 * 100 and dw.out_elems == 400
    assert (gc.m, gc.k, gc.n, gc.groups, gc.macs, gc.weights, gc.bias) == (50, 2, 12, 4, 50 * 2 * 12, 24, 12)
    assert ("dw", "relu") in wl.edges and ("relu", "gc") in wl.edges


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(16, 16)
        self.k = nn.Linear(16, 16)
        self.v = nn.Linear(16, 16)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, 2, 8).transpose(1, 2)
        k = self.k(x).view(b, t, 2, 8).transpose(1, 2)
        v = self.v(x).view(b, t, 2, 8).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)).softmax(-1)
        o = s @ v
        return torch.bmm(o.reshape(b * 2, t, 8), v.reshape(b * 2, t, 8).transpose(1, 2)) + x.sum()


def test_functional_matmuls():
    wl = capture(_Attention().eval(), torch.randn(1, 6, 16))
    mm = [l for l in wl.layers if l.kind == "matmul"]
    assert [l.name for l in mm] == ["matmul", "matmul_1", "bmm"]
    qk, av, bmm = mm
    assert (qk.m, qk.k, qk.n, qk.batch, qk.macs) == (6, 8, 6, 2, 2 * 6 * 8 * 6)
    assert (av.m, av.k, av.n, av.batch) == (6, 6, 8, 2)
    assert (bmm.m, bmm.k, bmm.n, bmm.batch) == (6, 8, 6, 2)
    assert all(l.stationary_is_activation and l.weights == 0 for l in mm)
    assert wl.count("linear") == 3 and ("q", "k", "v") in wl.shared_input_groups


def test_minilm_lists_every_linear_and_attention_product():
    recipe = get_recipe("minilm")
    wl = capture(recipe.build(), recipe.example_input())
    lin = [l for l in wl.layers if l.kind == "linear"]
    assert len(lin) == 36 and all(l.m == 128 for l in lin)
    assert not any(l.name.startswith("pooler") for l in wl.layers)
    assert wl.layer("encoder.layer.0.intermediate.dense").n == 1536
    qk = [l for l in wl.layers if l.kind == "matmul" and l.name.endswith(".qk")]
    assert len(qk) == 6 and (qk[0].m, qk[0].k, qk[0].n, qk[0].batch) == (128, 32, 128, 12)
    assert len([l for l in wl.layers if l.kind == "matmul"]) == 12
    assert wl.weights == 6 * (4 * 384 * 384 + 2 * 384 * 1536)


def test_digits_registry_and_calibration():
    recipe = get_recipe("digits_cnn")
    wl = capture(recipe.build(), recipe.example_input())
    assert wl.layer_names == ["stem_conv", "block_conv1", "block_conv2", "fc"]
    assert ("stem_conv", "block_conv2") in wl.residual_groups
    batches = recipe.calibration(70)
    assert sum(len(b) for b in batches) == 70 and batches[0].shape[1:] == (1, 8, 8)


def test_image_calibration_is_synthetic_and_deterministic(tmp_path):
    recipe = get_recipe("mobilenet_v2")
    a, b = recipe.calibration(3), recipe.calibration(3)
    assert a[0].shape == (3, 3, 224, 224) and torch.equal(a[0], b[0])
    torch.save(torch.zeros(2, 3, 224, 224), tmp_path / "x.pt")
    assert recipe.calibration(2, tmp_path)[0].abs().sum() == 0
    with pytest.raises(UsageError, match="not an ImageFolder"):
        recipe.calibration(1, _empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_unknown_model_lists_known_names():
    with pytest.raises(UsageError) as info:
        get_recipe("vgg16")
    for name in MODEL_NAMES:
        assert name in str(info.value)
    assert {"resnet18", "resnet50", "mobilenet_v2", "minilm", "digits_cnn"} <= set(MODEL_NAMES)


class _Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 4, 3, 3))
        self.fc = nn.Linear(96, 5)

    def forward(self, x):
        y = torch.nn.functional.conv2d(x, self.w, None, 2, 1, 1, 2)
        return torch.nn.functional.linear(y.flatten(1), self.fc.weight, self.fc.bias)


def test_functional_conv_and_linear_on_parameters():
    wl = capture(_Functional(), torch.randn(1, 8, 8, 8))
    conv, fc = wl.layers
    assert (conv.kind, conv.m, conv.k, conv.n, conv.groups, conv.stride) == ("conv", 16, 36, 6, 2, (2, 2))
    assert (fc.name, fc.kind, fc.m, fc.k, fc.n, fc.bias) == ("fc", "linear", 1, 96, 5, 5)
    assert wl.edges == [("input", "conv2d"), ("conv2d", "fc")]
