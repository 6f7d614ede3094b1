"""The explore study's resume (``--reuse``), proxy-method extension and report rendering
(``hwq.reports.explore_study``), on small hand-made results: no model is run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwq.errors import UsageError
from hwq.reports import explore_study as es
from hwq.search.problem import Problem
from hwq.search.proxy import sample_plans

SENS = "hessian (toy)"


def _result(model="minilm", rows=(), proxy=None, finetune=(), seeds=(0, 1, 2), seconds=10.0, **kw) -> dict:
    r = {"model": model, "arch": "bitmod", "sensitivity": SENS, "layers": 3, "seeds": list(seeds), "refine_k": 3,
         "rows": [{"fraction": f, "tag": tag} for f, tag in rows], "proxy": proxy, "finetune": list(finetune),
         "seconds": seconds}
    r.update(kw)
    return r


def _parts(previous, **kw):
    args = dict(arch="bitmod", sensitivity=SENS, layers=3, seeds=[0, 1, 2], refine_k=3)
    args.update(kw)
    return es.previous_parts(previous, "minilm", **args)


def test_previous_parts_merges_first_wins_and_sums_time():
    proxy = {"plans": 2, "methods": {"kl": {"spearman": 0.5}}, "measured": [0.1, 0.2], "energy_pj": [1.0, 2.0]}
    prev = [_result(rows=[(0.06, "a"), (0.15, "a")], seconds=100.0),
            _result(rows=[(0.15, "b"), (0.3, "b")], seconds=50.0),
            _result(model="digits_cnn", rows=[(0.5, "d")], seconds=7.0, sensitivity="other"),  # other model: ignored
            _result(rows=[], proxy=proxy, seeds=[0], seconds=20.0),  # proxy-only run under seed 0 alone
            _result(rows=[], finetune=[{"plan": "refined"}], seconds=30.0)]
    out = _parts(prev)
    assert [(r["fraction"], r["tag"]) for r in out["rows"]] == [(0.06, "a"), (0.15, "a"), (0.3, "b")]
    assert out["proxy"] == proxy and out["proxy"] is not proxy  # a copy: adding methods leaves the input alone
    assert out["finetune"] == [{"plan": "refined"}]
    assert out["seconds"] == pytest.approx(200.0)
    assert "proxy check" in out["reused"] and "fine-tuning rows" in out["reused"]
    assert out["float_quality"] is None and out["refine_metric"] is None  # the toy results record none
    assert _parts([]) == {"rows": [], "proxy": None, "finetune": [], "seconds": 0.0, "reused": [],
                          "float_quality": None, "refine_metric": None}


def test_previous_parts_joins_the_parts_of_one_proxy_check():
    base = {"plans": 3, "methods": {}, "energy_pj": [1.0, 2.0, 3.0]}
    parts = [_result(rows=[], seeds=[0], seconds=5.0, proxy=dict(base, measured=m, seconds=5.0))
             for m in ([0.1, None, None], [None, 0.2, None], [None, None, 0.3])]
    out = _parts(parts[:2])
    assert out["proxy"]["measured"] == [0.1, 0.2, None] and out["seconds"] == pytest.approx(10.0)
    out = _parts(parts)
    assert out["proxy"]["measured"] == [0.1, 0.2, 0.3] and out["proxy"]["seconds"] == pytest.approx(15.0)
    other = _result(rows=[], seeds=[0], proxy=dict(base, energy_pj=[1.0, 2.0, 4.0], measured=[None, None, 0.3]))
    with pytest.raises(UsageError, match="different plans"):
        _parts(parts[:1] + [other])


@pytest.mark.parametrize("prev,msg", [
    (_result(rows=[(0.06, "a")], sensitivity="kl"), "sensitivity"),
    (_result(rows=[(0.06, "a")], seeds=[0]), "seeds"),
    (_result(rows=[(0.06, "a")], refine_k=4), "refine_k"),
    (_result(proxy={"plans": 1, "methods": {}, "measured": [0.5]}, seeds=[1]), "seed"),
])
def test_previous_parts_refuses_other_options(prev, msg):
    with pytest.raises(UsageError, match=msg):
        _parts([prev])


def _problem() -> Problem:
    rng = np.random.default_rng(3)
    energy = np.sort(rng.uniform(1, 10, (5, 4)), axis=1)
    return Problem([f"l{i}" for i in range(5)], [f"c{j}" for j in range(4)], rng.uniform(0, 1, (5, 4)), energy)


def test_added_proxy_method_scores_the_saved_measurements(monkeypatch):
    p = _problem()
    plans = sample_plans(p, 12, seed=0)
    energy = es._plan_energies(p, plans, offset=5.0)
    # measured quality that the new method's table orders exactly (quality falls with its total)
    S_new = -p.energy_pj  # more energy -> lower Omega
    measured = [float(e) for e in energy]
    proxy = {"plans": 12, "methods": {"old": {"spearman": 0.1}}, "energy_pj": energy, "measured": list(measured),
             "seconds": 1.0}
    monkeypatch.setitem(es.PROXY_METHODS, "toy", {"old": ("kl", "auto"), "new": ("hessian", "hvp")})
    asked = []

    def fake(model_name, base, arch, methods):
        asked.append(sorted(methods))
        return {k: S_new for k in methods}

    monkeypatch.setattr(es, "_method_sensitivities", fake)
    out = es._add_proxy_methods(proxy, "toy", p, "bitmod", offset=5.0)
    assert asked == [["new"]]  # only the missing method is computed
    assert out["methods"]["old"] == {"spearman": 0.1} and out["measured"] == measured
    assert out["methods"]["new"]["spearman"] == pytest.approx(1.0)
    # plans that no longer match the saved energies: refused, nothing computed
    asked.clear()
    bad = dict(proxy, methods={"old": {}}, energy_pj=[e + 1.0 for e in energy])
    with pytest.raises(UsageError, match="not the ones"):
        es._add_proxy_methods(bad, "toy", p, "bitmod", offset=5.0)
    assert asked == []


def test_finetune_table_has_held_out_columns_only_when_measured():
    ft = {"budget_pj": 1.4e9, "plan": "refined", "mix": "bitmod3/a8 x36", "before": 0.5, "after": 0.75,
          "held_out": "186 sentences not fine-tuned on", "before_held_out": 0.4, "after_held_out": 0.6, "steps": 60,
          "lr": 1e-5, "calib_samples": 64, "device": "cpu", "seconds": 321.0}
    text = "\n".join(es._finetune_markdown({"model": "minilm", "finetune": [ft]}))
    assert "60 Adam steps, lr 1e-05" in text and "64 calibration sentences" in text
    assert "| 0.5000 | 0.7500 | +0.2500 | 0.4000 | 0.6000 | +0.2000 | cpu | 321 |" in text
    old = {k: v for k, v in ft.items() if k not in ("held_out", "before_held_out", "after_held_out", "lr",
                                                    "calib_samples")}
    text = "\n".join(es._finetune_markdown({"model": "digits_cnn", "finetune": [old]}))
    assert "held-out" not in text and "lr 0.001" in text and "512 calibration (training) images" in text


def test_bad_results_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"not": "a list"}))
    assert es._cli(["--merge", str(bad)]) == 2
    assert es._cli(["--models", "minilm", "--reuse", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a list of study results" in err[0] and "missing.json" in err[1]
