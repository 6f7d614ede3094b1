"""``hwq quantize``: round trip through safetensors and every one-line error path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hwq.cli.main import main
from hwq.quant import QuantizedWeight, quantize_weight
from hwq.quant.fixed import fixed_point


@pytest.fixture()
def tensors(tmp_path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "in.safetensors"
    save_file({"fc.weight": torch.randn(8, 256, generator=g), "fc.bias": torch.randn(8, generator=g),
               "conv.weight": torch.randn(4, 2, 4, 4, generator=g), "steps": torch.arange(3)}, str(path))
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["quantize", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt,bits", [("bitmod", 4), ("int_asym", 3), ("mx", 4)])
def test_round_trip(tensors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, bits: int) -> None:
    out_path = tmp_path / "out.safetensors"
    code, out, err = _run(capsys, str(tensors), "-o", str(out_path), "--format", fmt, "--bits", str(bits),
                          "--group-size", "32", "--json")
    assert code == 0, err
    report = json.loads(out)
    by_name = {r["name"]: r for r in report["tensors"]}
    assert by_name["fc.bias"]["quantized"] is False and "steps" not in by_name
    assert by_name["fc.weight"]["sqnr_db"] > 8
    src, res = load_file(str(tensors)), load_file(str(out_path))
    assert torch.equal(res["steps"], src["steps"]) and torch.equal(res["fc.bias"], src["fc.bias"])
    for name in ("fc.weight", "conv.weight"):
        expect = quantize_weight(src[name].double(), fmt, bits, group_size=32).float()
        assert torch.equal(res[name], expect) and res[name].dtype == torch.float32
        datatypes = {"bitmod": ("fp4_er_pos", "fp4_er_neg", "fp4_ea_pos", "fp4_ea_neg"), "int_asym": ("uint3",),
                     "mx": ("fp4",)}[fmt]
        gs = res[f"{name}.codes"].shape[1] // res[f"{name}.scales"].shape[1]
        qw = QuantizedWeight(res[f"{name}.codes"].long(), res[f"{name}.selectors"].long(), res[f"{name}.scales"].long(),
                             res[f"{name}.row_scale"], res.get(f"{name}.zero_point", torch.zeros(1)).long(), fmt, bits,
                             gs, datatypes, tuple(src[name].shape), 8)
        assert torch.equal(qw.dequantize(torch.float32), res[name])  # codes + scales reproduce the tensor
    mse = float(((res["fc.weight"].double() - src["fc.weight"].double()) ** 2).mean())
    assert by_name["fc.weight"]["mse"] == pytest.approx(mse, rel=1e-6)


def test_table_and_fixed(tensors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "fx.safetensors"
    code, out, err = _run(capsys, str(tensors), "-o", str(out_path), "--format", "fixed", "--width", "8",
                          "--int-bits", "3", "--rounding", "RND", "--overflow", "SAT")
    assert code == 0, err
    assert "SQNR dB" in out and "fc.bias" in out and "ap_fixed<8,3,RND,SAT>" in out
    src, res = load_file(str(tensors)), load_file(str(out_path))
    for name in ("fc.weight", "fc.bias", "conv.weight"):
        expect = fixed_point(src[name].double(), 8, 3, rounding="RND", overflow="SAT")
        assert torch.equal(res[name].double(), expect)
        assert torch.equal(res[f"{name}.codes"].double() * 2.0 ** -5, expect)


@pytest.mark.parametrize("args,message", [
    (["MISSING", "--format", "int", "--bits", "4"], "does not exist"),
    (["BAD", "--format", "int", "--bits", "4"], "not a readable safetensors file"),
    (["IN", "--format", "int", "--bits", "4", "--group-size", "48"], "group size 48 does not divide"),
    (["IN", "--format", "int9", "--bits", "4"], "unknown format 'int9'"),
    (["IN", "--format", "fp", "--bits", "5"], "no 5-bit variant"),
    (["IN", "--format", "bitmod"], "needs --bits"),
    (["IN", "--format", "fixed", "--width", "8"], "needs --width W and --int-bits I"),
    (["IN", "--format", "fixed", "--width", "8", "--int-bits", "2", "--rounding", "UP"], "unknown rounding mode"),
])
def test_errors_are_one_line(tensors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                             message: str) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a tensor file")
    subst = {"IN": str(tensors), "MISSING": str(tmp_path / "missing.safetensors"), "BAD": str(bad)}
    out_path = tmp_path / "never.safetensors"
    code, out, err = _run(capsys, *[subst.get(a, a) for a in args], "-o", str(out_path))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("hwq quantize: error: ") and message in err, err
    assert "Traceback" not in err and not out_path.exists()
