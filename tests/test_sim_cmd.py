"""Error paths of `hwq sim` and `hwq bench`: one-line messages and the project's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwq.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_sim_malformed_layer_ref(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sim", "--layer", "resnet50")
    assert code == 2
    _one_line_error(err, "MODEL:LAYER")


def test_sim_unknown_arch(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sim", "--arch", "no_such_arch", "--layer", "resnet50:layer2.0.conv2")
    assert code == 2
    _one_line_error(err, "no_such_arch")


def test_sim_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sim", "--layer", "no_such_model:fc")
    assert code == 2
    _one_line_error(err, "no_such_model", "resnet50")


def test_sim_unknown_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sim", "--layer", "digits_cnn:no.such.layer")
    assert code == 2
    _one_line_error(err, "no.such.layer")


def test_sim_layer_without_gemm(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from models.registry import get_recipe

    model = get_recipe("digits_cnn").build()
    not_gemm = next(n for n, m in model.named_modules() if n and not isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
                    and not list(m.children()))
    code, _, err = _run(capsys, "sim", "--layer", f"digits_cnn:{not_gemm}")
    assert code == 2
    _one_line_error(err, not_gemm, "Conv2d or Linear")


def test_sim_plan_without_layer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from models.registry import get_recipe

    model = get_recipe("digits_cnn").build()
    layer = next(n for n, m in model.named_modules() if type(m).__name__ == "Linear")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"layers": [{"name": "other", "format": "int", "bits": 8, "act_bits": 8}]}))
    code, _, err = _run(capsys, "sim", "--layer", f"digits_cnn:{layer}", "--plan", str(plan))
    assert code == 2
    _one_line_error(err, "no entry for layer", layer)


def test_sim_missing_plan_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "sim", "--layer", "digits_cnn:fc", "--plan", str(tmp_path / "nope.json"))
    assert code == 2
    _one_line_error(err, "nope.json")


def test_bench_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "bench", "no_such_bench")
    assert code == 2
    _one_line_error(err, "no_such_bench", "sim")


def _tiny_arch(path: Path) -> Path:
    """The bitmod preset at 2x3 PEs x 4 lanes with BitMoD formats only (fast to build)."""
    import yaml

    from hwq.spec import load_spec

    d = load_spec("bitmod").to_dict()
    d["name"] = "bitmod_tiny"
    d["array"] = {"rows": 2, "cols": 3, "lanes": 4}
    d["arithmetic"]["weight_formats"] = [{"format": "bitmod", "bits": [3, 4]}]
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


MINILM_QUERY = "minilm:encoder.layer.0.attention.self.query"


def test_sim_mismatch_exits_1_and_prints_first_mismatch(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong RTL output (injected in place of the simulator) must give exit 1 and the first bad output."""
    import hwq.verify.rtl as rtl

    def corrupted(tiles, spec, simulator, build_dir=None, *, dataflow=None):
        out = []
        for t in tiles:
            y = t.expected()
            y[0, 1] += 3
            out.append(rtl.TileRun(y, -1, 0, 0, t.m, 1))
        return out

    monkeypatch.setattr(rtl, "run_array_tiles", corrupted)
    code, out, _ = _run(capsys, "sim", "--arch", str(_tiny_arch(tmp_path / "a.yaml")), "--layer", MINILM_QUERY,
                        "--no-cost-model")
    assert code == 1
    assert "MISMATCH" in out and "first mismatch: output [m=0, n=1]" in out
    assert "measured -1" in out


@pytest.mark.slow
@pytest.mark.hw
def test_sim_json_on_icarus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _run(capsys, "sim", "--arch", str(_tiny_arch(tmp_path / "a.yaml")), "--layer", MINILM_QUERY,
                          "--simulator", "icarus", "--json", "--build-dir", str(tmp_path / "build"))
    assert code == 0, err
    r = json.loads(out)
    assert r["ok"] and r["mismatches"] == 0 and r["outputs_compared"] == r["tile"]["m"] * r["tile"]["n"] > 0
    assert r["measured_cycles"] == r["predicted_cycles"] > 0
    assert r["cost_model"]["compute_cycles"] == r["cost_model"]["timing_cycles"]


def _tiny_accumulating_arch(path: Path) -> Path:
    """:func:`_tiny_arch` with both dataflows, elided partial sums and 8-deep accumulators."""
    import yaml

    d = yaml.safe_load(_tiny_arch(path).read_text())
    d["name"] = "bitmod_tiny_acc"
    d["dataflow"] = {"modes": ["accumulate_in_array", "output_buffer"], "partial_sums": "elide_first_last"}
    d["accumulators"] = {"depth": 8, "access_bits": 32, "read_energy_pj": 1.36, "write_energy_pj": 1.36}
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def test_sim_dataflow_the_arch_does_not_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "sim", "--arch", str(_tiny_arch(tmp_path / "a.yaml")), "--layer", MINILM_QUERY,
                        "--dataflow", "accumulate_in_array", "--no-cost-model")
    assert code == 2
    _one_line_error(err, "accumulate_in_array")


@pytest.mark.slow
@pytest.mark.hw
def test_sim_batch4_accumulate_in_array_on_icarus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The issue's command on a small array: `hwq sim --layer resnet50:layer2.0.conv2 --batch 4
    --dataflow accumulate_in_array` runs several M tiles and K tiles, bit-exact, with measured cycles and
    psum accesses equal to hwq.timing and the cost model's whole-layer cycles equal to hwq.timing."""
    arch = _tiny_accumulating_arch(tmp_path / "acc.yaml")
    code, out, err = _run(capsys, "sim", "--arch", str(arch), "--layer", "resnet50:layer2.0.conv2",
                          "--batch", "4", "--dataflow", "accumulate_in_array", "--simulator", "icarus", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["ok"] and r["batch"] == 4 and r["dataflow"] == "accumulate_in_array" and r["psum_elide"]
    assert r["mismatches"] == 0 and r["outputs_compared"] == r["tile"]["m"] * r["tile"]["n"] > 0
    assert r["tiling"]["m_tiles"] >= 2 and r["tiling"]["k_tiles"] >= 2 and r["tiling"]["m_tile"] == 8
    assert r["tile"]["m"] > 8 and r["tile"]["m"] % 4 == 0  # rows of all 4 images
    assert r["measured_cycles"] == r["predicted_cycles"] > 0
    assert r["psum_accesses"]["measured"] == r["psum_accesses"]["predicted"]
    assert r["psum_accesses"]["measured"][0] > 0
    assert r["cost_model"]["compute_cycles"] == r["cost_model"]["timing_cycles"]
    assert r["cost_model"]["images"] == 4
