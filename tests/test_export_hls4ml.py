"""``hwq export --to hls4ml`` (issue 15, section 2): per-layer ap_fixed types from a fixed-point (QFX) plan
on an FPGA preset, and hls4ml's C++ emulation bit-exact with hwq's fixed-point golden model."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

try:
    import hls4ml  # noqa: F401
except ImportError as err:  # fail, never skip: the check is part of make test
    raise ImportError("hls4ml is missing: run scripts/setup.sh (pip install -e '.[test]' installs hls4ml)") from err

from hwq.cli.main import main  # noqa: E402
from hwq.datatypes import FixedFormat  # noqa: E402
from hwq.errors import UsageError  # noqa: E402
from hwq.export.qfx_plan import SCHEMA, format_text, make_qfx_plan, parse_format  # noqa: E402

PLAN = {"schema": "hwq.plan/1", "inputs": {"model": "digits_cnn", "arch": "fpga_zu"}, "layers": [
    {"name": "stem_conv", "format": "int", "bits": 8, "act_bits": 8},
    {"name": "block_conv1", "format": "int", "bits": 6, "act_bits": 8},
    {"name": "block_conv2", "format": "int", "bits": 4, "act_bits": 8},
    {"name": "fc", "format": "int", "bits": 8, "act_bits": 8}]}


@pytest.fixture(scope="module")
def digits():
    from models.registry import get_recipe

    recipe = get_recipe("digits_cnn")
    model = recipe.build()
    qfx = make_qfx_plan(model, recipe.calibration(64), model_name="digits_cnn", arch="fpga_zu", plan=PLAN)
    return recipe, model, qfx


def test_format_text_round_trip():
    for fmt in (FixedFormat(8, -1, True, "RND", "SAT"), FixedFormat(6, 3, False, "TRN", "WRAP"),
                FixedFormat(8, 1, True, "RND_CONV", "SAT_SYM", k_hot=2)):
        assert parse_format(format_text(fmt)) == fmt
    assert parse_format("ap_fixed<16,6>") == FixedFormat(16, 6, True, "TRN", "WRAP")  # HLS defaults
    with pytest.raises(UsageError, match="is not an ap_fixed"):
        parse_format("fixed<8,2>")
    with pytest.raises(UsageError, match="rounding must be"):
        parse_format("ap_fixed<8,2,AP_NEAREST,AP_SAT>")


def test_hls4ml_config_types_come_from_the_plan(digits, tmp_path):
    """Every layer's weight/bias/result type is the plan's; accumulators are exact in the preset's
    accumulator_bits; the explore plan's per-layer weight widths reach the config."""
    from hwq.export.hls4ml import export_hls4ml
    from hwq.spec import load_spec

    recipe, model, qfx = digits
    spec = load_spec("fpga_zu")
    res = export_hls4ml(model, qfx, spec, recipe.example_input(), tmp_path)
    cfg = json.loads((tmp_path / "hls4ml_config.json").read_text())["LayerName"]
    t = qfx["tensors"]
    strip = {k: parse_format(v) for k, v in t.items()}

    def text(key: str) -> str:
        return format_text(strip[key])

    assert cfg["x"]["Precision"]["result"] == text("input_quant")
    for conv in ("stem_conv", "block_conv1", "block_conv2", "fc"):
        p = cfg[conv]["Precision"]
        assert p["weight"] == text(f"model.{conv}.weight_quant")
        assert p["result"] == text(f"model.{conv}.out_quant")
        assert p["accum"].startswith(f"ap_fixed<{spec.arithmetic.accumulator_bits},")
    assert [parse_format(cfg[c]["Precision"]["weight"]).width for c in ("stem_conv", "block_conv1", "block_conv2",
                                                                       "fc")] == [8, 6, 4, 8]
    assert cfg["fc"]["Precision"]["bias"] == text("model.fc.bias_quant")
    assert cfg["stem_bn"]["Precision"]["scale"] == text("model.stem_bn.scale_quant")
    assert cfg["stem_bn"]["Precision"]["bias"] == text("model.stem_bn.shift_quant")
    assert cfg["add"]["Precision"]["result"] == text("model.add.quant")
    assert cfg["stem_relu"]["Precision"]["result"].startswith("ap_ufixed<8,")
    assert cfg["pool"]["Precision"]["result"] == text("model.block_relu2.quant")
    assert (tmp_path / "hls4ml_prj" / "firmware" / "myproject.cpp").is_file()
    assert json.loads((tmp_path / "qfx_plan.json").read_text())["schema"] == SCHEMA
    # stem_conv: 9 products of an 8-bit unsigned input and an 8-bit weight: F = Fx + Fw
    x_f, w_f = strip["input_quant"].frac_bits, strip["model.stem_conv.weight_quant"].frac_bits
    assert parse_format(cfg["stem_conv"]["Precision"]["accum"]).frac_bits == x_f + w_f
    assert len(res.layers) == 14


def test_hls4ml_export_names_what_it_cannot_write(digits, tmp_path):
    from hwq.export.hls4ml import export_hls4ml
    from hwq.spec import load_spec

    recipe, model, qfx = digits
    spec = load_spec("fpga_zu")
    wrap_sm = dict(qfx, tensors={**qfx["tensors"], "model.stem_bn.out_quant": "ap_fixed<8,3,AP_RND,AP_WRAP_SM>"})
    with pytest.raises(UsageError, match=r"layer stem_bn .*no AP_WRAP_SM"):
        export_hls4ml(model, wrap_sm, spec, recipe.example_input(), tmp_path / "a")
    narrow = dataclasses.replace(spec, arithmetic=dataclasses.replace(spec.arithmetic, accumulator_bits=12))
    with pytest.raises(UsageError, match=r"layer stem_conv's exact sum needs \d+ bits, more than the preset's "
                                         r"accumulator_bits 12"):
        export_hls4ml(model, qfx, narrow, recipe.example_input(), tmp_path / "b")
    with pytest.raises(UsageError, match="targets an FPGA preset"):
        export_hls4ml(model, qfx, load_spec("bitmod"), recipe.example_input(), tmp_path / "c")

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.gate = nn.Sigmoid()

        def forward(self, x):
            return self.gate(self.conv(x))

    odd = Odd().eval()
    x = torch.rand(4, 1, 8, 8)
    plan = make_qfx_plan(odd, [x], model_name="odd", arch="fpga_zu", width=8)
    with pytest.raises(UsageError, match=r"layer gate \(gate\): Sigmoid is not exported"):
        export_hls4ml(odd, plan, spec, x[:1], tmp_path / "d")


def test_hls4ml_cli_errors(tmp_path, capfd):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    assert main(["export", "--plan", str(plan), "--to", "hls4ml", "--arch", "bitmod", str(tmp_path / "o")]) == 2
    assert "needs an FPGA preset" in capfd.readouterr()[1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": SCHEMA, "inputs": {"model": "digits_cnn"}, "tensors": {"input_quant": "x"}}))
    assert main(["export", "--plan", str(bad), "--to", "hls4ml", str(tmp_path / "o")]) == 2
    assert "is not an ap_fixed" in capfd.readouterr()[1]


@pytest.mark.slow
def test_hls4ml_emulation_bit_exact_on_digits(tmp_path, capfd):
    """The Must-show: ``hwq export --to hls4ml --check`` compiles hls4ml's C++ emulation (g++, bundled
    ap_types) and runs predict() on all 540 digits test images: 0 values differ from hwq's golden model."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    out = tmp_path / "hls"
    assert main(["export", "--plan", str(plan), "--to", "hls4ml", str(out), "--check", "--json"]) == 0
    check = json.loads(capfd.readouterr()[0])["check"]
    assert check["images"] == 540
    assert check["mismatched_values"] == 0 and check["mismatched_images"] == 0, check
    assert check["max_abs_diff"] == 0.0
    assert check["golden_vs_fake_quant_mismatches"] == 0  # integer golden == float64 fake-quant model
    # the written QFX plan is a plan hwq export reads back (no recalibration): same types
    qfx = json.loads((out / "qfx_plan.json").read_text())
    assert qfx["schema"] == SCHEMA and qfx["inputs"]["from_plan"] == str(plan)


@pytest.mark.parametrize("rounding,overflow", [("TRN", "WRAP"), ("RND_CONV", "SAT_SYM"), ("RND_ZERO", "WRAP_SM")])
def test_integer_golden_equals_fake_quant(digits, rounding, overflow):
    """hwq.export.qfx_golden (int64 codes, hwq.golden.requantize) equals the QFX fake-quant model in float64 on
    200 test images, for modes where rounding and overflow both happen (6-bit types); RND/SAT on all 540 is
    in the slow hls4ml test."""
    import copy

    from hwq.export.qfx_golden import qfx_golden
    from hwq.export.qfx_plan import qfx_model
    from models.digits_cnn import load_digits_split

    recipe, model, qfx = digits
    plan = make_qfx_plan(model, recipe.calibration(64), model_name="digits_cnn", arch="fpga_zu", width=6,
                         rounding=rounding, overflow="WRAP" if overflow == "WRAP_SM" else overflow)
    if overflow == "WRAP_SM":  # signed types only (the unsigned ReLU outputs keep WRAP)
        plan["tensors"] = {k: v.replace("AP_WRAP", "AP_WRAP_SM") if v.startswith("ap_fixed") else v
                           for k, v in plan["tensors"].items()}
    q = qfx_model(model, plan)
    x = load_digits_split()[2][:200]
    gold = qfx_golden(model, q, x)
    with torch.no_grad():
        fake = copy.deepcopy(q).double()(x.double()).numpy()
    assert gold.shape == (200, 10)
    assert int((gold != fake).sum()) == 0
