"""``hwq explore`` end to end on the digits CNN (small, real data), plus its error exits."""

from __future__ import annotations

import json
import re

import pytest

from hwq.cli.main import main
from hwq.search.plan import validate_plan
from hwq.search.report import FILES
from hwq.search.units import format_si, parse_energy

FAST = ["--samples", "2", "--calib-samples", "32", "--pareto", "3"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hwq_cache")


@pytest.fixture(autouse=True)
def _cache_env(cache, monkeypatch):
    monkeypatch.setenv("HWQ_CACHE_DIR", str(cache))


def _explore(capfd, *args):
    rc = main(["explore", "--model", "digits_cnn", *FAST, "--json", *args])
    out, err = capfd.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


@pytest.mark.parametrize("budget", ["2mj", "two mJ", "2 m J", "-1mJ", "2ms"])
def test_malformed_budget_exits_2(capfd, budget):
    assert main(["explore", "--model", "digits_cnn", f"--budget={budget}"]) == 2
    err = capfd.readouterr().err
    assert "energy budget" in err and "2mJ" in err and len(err.strip().splitlines()) == 1


def test_malformed_latency_and_unknown_model_exit_2(capfd):
    assert main(["explore", "--model", "digits_cnn", "--budget", "1uJ", "--latency", "5 parsecs"]) == 2
    assert main(["explore", "--model", "no_such_model", "--budget", "1uJ"]) == 2
    err = capfd.readouterr().err
    assert "latency budget" in err and "known models" in err


def test_bad_weights_file_exits_2(capfd, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for path in (junk, tmp_path / "missing.pt"):
        assert main(["explore", "--model", "digits_cnn", "--budget", "1mJ", "--weights", str(path)]) == 2
        err = capfd.readouterr().err
        assert f"--weights {path}" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def cheapest_j(cache):
    """The digits CNN's cheapest plan energy (J), read from the exit-1 message of a too-small budget."""
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["explore", "--model", "digits_cnn", "--budget", "1pJ", "--out", str(cache / "never")])
    m = re.search(r"below the cheapest plan's energy (\d[\d.]*[pnum]?J)", err.getvalue())
    assert rc == 1 and m, err.getvalue()
    assert "Traceback" not in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1
    assert not (cache / "never").exists()
    return parse_energy(m.group(1))


def test_budget_below_cheapest_exits_1_with_cost(capfd, tmp_path, cheapest_j):
    rc, _, err = _explore(capfd, "--budget", format_si(cheapest_j * 0.9, "J"), "--out", str(tmp_path / "r"))
    assert rc == 1 and f"cheapest plan's energy {format_si(cheapest_j, 'J')}" in err
    assert not (tmp_path / "r").exists()
    rc, _, _ = _explore(capfd, "--budget", format_si(cheapest_j * 1.001, "J"), "--out", str(tmp_path / "r"))
    assert rc == 0  # just above the cheapest plan: feasible


def test_end_to_end_writes_report_and_hits_cache(capfd, tmp_path, cheapest_j, monkeypatch):
    monkeypatch.setenv("HWQ_CACHE_DIR", str(tmp_path / "cache"))  # empty: the first run computes
    out = tmp_path / "report"
    budget = format_si(cheapest_j * 1.15, "J")
    rc, first, _ = _explore(capfd, "--budget", budget, "--out", str(out))
    assert rc == 0 and not first["sensitivity_cache_hit"]
    for name in FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    plan = json.loads((out / "plan.json").read_text())
    validate_plan(plan)
    assert plan["solver"]["status"] == "Optimal" and plan["solver"]["optimal"]
    assert plan["totals"]["energy_j"] <= parse_energy(budget)
    assert plan["inputs"]["calibration"].startswith("scikit-learn digits")
    assert "Gauss-Newton" in plan["inputs"]["sensitivity"]  # auto: unlabelled data
    assert [l["name"] for l in plan["layers"]] == ["stem_conv", "block_conv1", "block_conv2", "fc"]
    assert sum(l["energy_pj"] for l in plan["layers"]) == pytest.approx(plan["totals"]["energy_pj"])
    # the ILP never loses to its baselines under the same budget
    base = plan["baselines"]
    assert plan["totals"]["sensitivity"] <= base["greedy"]["sensitivity"] + 1e-12
    if base["best_uniform"]:
        assert plan["totals"]["sensitivity"] <= base["best_uniform"]["sensitivity"] + 1e-12
    report = (out / "report.md").read_text()
    assert f"Regenerate with: `hwq explore --model digits_cnn --budget {budget}" in report
    # the plan.json feeds the quantizer directly
    from hwq.quant import quantize_model
    from models.registry import get_recipe

    quantize_model(get_recipe("digits_cnn").build(), plan)
    # and `hwq cost --plan` prices it exactly as the plan says
    assert main(["cost", "--model", "digits_cnn", "--plan", str(out / "plan.json"), "--json"]) == 0
    priced = json.loads(capfd.readouterr().out)["totals"]
    assert priced["energy_pj"] == pytest.approx(plan["totals"]["energy_pj"], rel=1e-9)
    assert priced["latency_cycles"] == pytest.approx(plan["totals"]["latency_cycles"], rel=1e-9)

    rc, second, _ = _explore(capfd, "--budget", budget, "--out", str(out), "--solver", "highs")
    assert rc == 0 and second["sensitivity_cache_hit"]
    assert second["totals"]["sensitivity"] == pytest.approx(first["totals"]["sensitivity"], rel=1e-6)


def test_constraints_and_options_respected(capfd, tmp_path):
    # first/last (and, tied to the stem, block_conv2) at int8 (8.0625 bits with metadata): 216+5184+3840
    # weights take 9.34 kB, so 11.5 kB leaves block_conv1's 5184 weights 3.0625 bits (1.98 kB) or less
    rc, res, err = _explore(capfd, "--budget", "1mJ", "--latency", "1ms", "--max-size", "11.5kB",
                            "--keep-first-last-8bit", "--tie-residual", "--hessian-estimator", "hvp",
                            "--out", str(tmp_path / "r"))
    assert rc == 0, err
    t = res["totals"]
    assert t["energy_j"] <= 1e-3 and t["latency_s"] <= 1e-3 and t["size_bytes"] <= 11.5e3
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    by = {l["name"]: l for l in plan["layers"]}
    assert by["stem_conv"]["bits"] == 8 and by["fc"]["bits"] == 8
    assert by["stem_conv"]["act_bits"] == 8 and by["fc"]["act_bits"] == 8
    assert plan["inputs"]["options"]["tie_groups"] >= 1
    # the residual add reads the stem (via ReLU) and block_conv2: tied to the same choice
    assert by["stem_conv"]["choice"] == by["block_conv2"]["choice"]
    assert by["block_conv1"]["bits"] == 3
    assert "double backward" in plan["inputs"]["sensitivity"]
