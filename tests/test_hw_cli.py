"""`hwq rtl` and `hwq synth` end to end on a small spec, plus their usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hwq.cli.main import main
from hwq.spec import load_spec


def _small_spec(tmp_path: Path) -> Path:
    d = load_spec("bitmod").to_dict()
    d["name"] = "tiny"
    d["array"] = {"rows": 2, "cols": 2, "lanes": 4}
    d["arithmetic"]["weight_formats"] = [{"format": "bitmod", "bits": [4]}]
    d["arithmetic"]["group_size"] = 8
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def test_rtl_then_synth(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rtl"
    assert main(["rtl", "--arch", str(_small_spec(tmp_path)), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"pe_array.v", "hwq_pe.v", "hwq_decoder.v", "dequant.v", "synth.ys", "README.md", "blocks.json"} <= names
    readme = (out / "README.md").read_text()
    assert "`w_in__payload`" in readme and "`out__ready`" in readme
    capsys.readouterr()
    assert main(["synth", str(out), "--blocks", "dequant", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["xilinx"]["dequant"]
    assert res["DSP"] == 0 and res["LUT"] > 0 and res["FF"] > 0
    assert json.loads((out / "resources.json").read_text())["xilinx"]["dequant"] == res
    assert "| `dequant`" in (out / "resources.md").read_text()


def test_synth_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["synth", str(tmp_path)]) == 2
    assert "hwq rtl" in capsys.readouterr().err
    assert main(["rtl", "--arch", "no_such_preset", "--out", str(tmp_path / "x")]) == 2
