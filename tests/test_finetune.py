"""``hwq finetune``: QAT with distillation on the digits CNN (CPU)."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def digits():
    from models.digits_cnn import load_checkpoint
    from models.registry import get_recipe

    model = load_checkpoint()
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    plan = {"layers": [{"name": n, "format": "bitmod", "bits": 3, "act_bits": 4, "group_size": None} for n in names]}
    return model, plan, get_recipe("digits_cnn").calibration(256)


def test_distillation_lowers_the_loss_and_recovers_accuracy(digits):
    from hwq.quant import calibrate, quantize_model
    from hwq.quant.finetune import finetune
    from models.digits_cnn import evaluate

    model, plan, batches = digits
    ptq = quantize_model(model, plan)
    calibrate(ptq, batches)
    before = evaluate(ptq)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    res = finetune(model, plan, batches, steps=40, lr=1e-3, device="cpu")
    assert res.device == "cpu" and res.steps == 40
    assert sum(res.losses[-4:]) < sum(res.losses[:4])
    assert evaluate(res.model) >= before
    # the float model is untouched, and the student is still quantized by the plan
    assert all(torch.equal(v, snapshot[k]) for k, v in model.state_dict().items())
    assert type(res.model.fc).__name__ == "QuantLinear"
    assert evaluate(model) == pytest.approx(0.9963, abs=1e-4)


def test_cli_writes_weights_that_load_into_the_float_model(digits, tmp_path):
    from hwq.cli.main import main
    from models.digits_cnn import load_checkpoint

    _, plan, _ = digits
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"inputs": {"model": "digits_cnn"}, **plan}))
    assert main(["finetune", "--plan", str(p), "--steps", "3", "--device", "cpu", "--calib-samples", "64",
                 "--json"]) == 0
    out = json.loads((tmp_path / "finetune.json").read_text())
    assert out["steps"] == 3 and out["device"] == "cpu" and 0 <= out["before"] <= 1 and 0 <= out["after"] <= 1
    load_checkpoint(tmp_path / "finetuned.pt")  # strict load: float-model keys only


@pytest.mark.parametrize("argv,msg", [(["--plan", "missing.json"], "does not exist"),
                                      (["--steps", "-1"], "--steps")])
def test_cli_bad_input_exits_2(tmp_path, capsys, argv, msg, digits):
    from hwq.cli.main import main

    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"inputs": {"model": "digits_cnn"}, **digits[1]}))
    args = ["finetune", "--plan", str(p)] + argv if argv[0] != "--plan" else ["finetune"] + argv
    assert main(args) == 2
    assert msg in capsys.readouterr().err
