"""``hwq explore`` end to end on the digits CNN (small, real data), plus its error exits."""

from __future__ import annotations

import json

import pytest

from hwq.cli.main import main
from hwq.search.plan import validate_plan
from hwq.search.report import FILES

FAST = ["--samples", "2", "--calib-samples", "32", "--pareto", "3"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hwq_cache")


@pytest.fixture(autouse=True)
def _cache_env(cache, monkeypatch):
    monkeypatch.setenv("HWQ_CACHE_DIR", str(cache))


def _explore(capsys, *args):
    rc = main(["explore", "--model", "digits_cnn", *FAST, "--json", *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


@pytest.mark.parametrize("budget", ["2mj", "two mJ", "2 m J", "-1mJ", "2ms"])
def test_malformed_budget_exits_2(capsys, budget):
    assert main(["explore", "--model", "digits_cnn", f"--budget={budget}"]) == 2
    err = capsys.readouterr().err
    assert "energy budget" in err and "2mJ" in err and len(err.strip().splitlines()) == 1


def test_malformed_latency_and_unknown_model_exit_2(capsys):
    assert main(["explore", "--model", "digits_cnn", "--budget", "1uJ", "--latency", "5 parsecs"]) == 2
    assert main(["explore", "--model", "no_such_model", "--budget", "1uJ"]) == 2
    err = capsys.readouterr().err
    assert "latency budget" in err and "known models" in err


def test_budget_below_cheapest_exits_1_with_cost(capsys, tmp_path):
    rc, _, err = _explore(capsys, "--budget", "1nJ", "--out", str(tmp_path / "r"))
    assert rc == 1
    assert "below the cheapest plan's energy" in err and "uJ" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_end_to_end_writes_report_and_hits_cache(capsys, tmp_path):
    out = tmp_path / "report"
    rc, first, _ = _explore(capsys, "--budget", "1.45uJ", "--out", str(out))
    assert rc == 0 and not first["sensitivity_cache_hit"]
    for name in FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    plan = json.loads((out / "plan.json").read_text())
    validate_plan(plan)
    assert plan["solver"]["status"] == "Optimal" and plan["solver"]["optimal"]
    assert plan["totals"]["energy_j"] <= 1.45e-6
    assert plan["inputs"]["calibration"].startswith("scikit-learn digits")
    assert [l["name"] for l in plan["layers"]] == ["stem_conv", "block_conv1", "block_conv2", "fc"]
    assert sum(l["energy_pj"] for l in plan["layers"]) == pytest.approx(plan["totals"]["energy_pj"])
    # the ILP never loses to its baselines under the same budget
    base = plan["baselines"]
    assert plan["totals"]["sensitivity"] <= base["greedy"]["sensitivity"] + 1e-12
    if base["best_uniform"]:
        assert plan["totals"]["sensitivity"] <= base["best_uniform"]["sensitivity"] + 1e-12
    report = (out / "report.md").read_text()
    assert "Regenerate with: `hwq explore --model digits_cnn --budget 1.45uJ" in report
    # the plan.json feeds the quantizer directly
    from hwq.quant import quantize_model
    from models.registry import get_recipe

    quantize_model(get_recipe("digits_cnn").build(), plan)
    # and `hwq cost --plan` prices it exactly as the plan says
    assert main(["cost", "--model", "digits_cnn", "--plan", str(out / "plan.json"), "--json"]) == 0
    priced = json.loads(capsys.readouterr().out)["totals"]
    assert priced["energy_pj"] == pytest.approx(plan["totals"]["energy_pj"], rel=1e-9)
    assert priced["latency_cycles"] == pytest.approx(plan["totals"]["latency_cycles"], rel=1e-9)

    rc, second, _ = _explore(capsys, "--budget", "1.45uJ", "--out", str(out), "--solver", "highs")
    assert rc == 0 and second["sensitivity_cache_hit"]
    assert second["totals"]["sensitivity"] == pytest.approx(first["totals"]["sensitivity"], rel=1e-6)


def test_constraints_and_options_respected(capsys, tmp_path):
    # first/last (and, tied to the stem, block_conv2) at int8: the size budget forces block_conv1 to 3 bits
    rc, res, err = _explore(capsys, "--budget", "2.5uJ", "--latency", "1.4us", "--max-size", "11.5kB",
                            "--keep-first-last-8bit", "--tie-residual", "--out", str(tmp_path / "r"))
    assert rc == 0, err
    t = res["totals"]
    assert t["energy_j"] <= 2.5e-6 and t["latency_s"] <= 1.4e-6 and t["size_bytes"] <= 11.5e3
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    by = {l["name"]: l for l in plan["layers"]}
    assert by["stem_conv"]["bits"] == 8 and by["fc"]["bits"] == 8
    assert by["stem_conv"]["act_bits"] == 8 and by["fc"]["act_bits"] == 8
    assert plan["inputs"]["options"]["tie_groups"] >= 1
    # the residual add reads the stem (via ReLU) and block_conv2: tied to the same choice
    assert by["stem_conv"]["choice"] == by["block_conv2"]["choice"]
    assert by["block_conv1"]["bits"] == 3
