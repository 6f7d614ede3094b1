"""Streaming co-simulation (hwq.verify.stream): the generated array RTL runs whole layers from memory
images with no Python in the loop, bit-exact against hwq.golden and cycle-exact against hwq.timing,
on both simulators; whole real layers and the whole digits network on the full preset array.

A missing simulator fails these tests with its install hint (hwq.toolchain.require_simulator)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from hwq.hw.array_driver import expected_cycles, pack_layer, unpack_outputs
from hwq.hw.config import ArrayConfig
from hwq.hw.stimulus import layer_from_codes, random_layer

#: The whole-layer and network tests below run the full ``bitmod`` array from one streaming build
#: (:func:`hwq.verify.stream.shared_build_config`: the same buffer depths for ResNet-50, MiniLM and
#: the digits network, so one build key). They run first on one xdist worker (``make test`` runs
#: ``--dist loadfile``; tests/conftest.py collects ``long_build`` tests first): the first builds,
#: the others reuse the build, and the other worker runs the rest of the suite meanwhile instead of
#: waiting on the build lock.
FULL_ARRAY = pytest.mark.long_build


def _full_array_build() -> str:
    """The cached streaming build folder of the ``bitmod`` preset's full array at the shared depths."""
    from hwq.hw.config import array_config_from_spec
    from hwq.spec import load_spec
    from hwq.verify.stream import cached_build_folder, shared_build_config

    return str(cached_build_folder(shared_build_config(array_config_from_spec(load_spec("bitmod"))), "verilator"))

#: A small array with ragged columns and every format family it runs, so builds stay fast.
SMALL = ArrayConfig(2, 3, 4, formats=(("bitmod", 4), ("int", 8), ("fp", 3)), group_size=16, x_depth=256,
                    w_depth=1024, out_depth=32)


def _layers(cfg: ArrayConfig):
    """Layer images with golden outputs: ragged K and N, one row, every format, an M-tiled run."""
    out = [random_layer(cfg, m, k, n, f, seed=10 + i, group_size=16)
           for i, (m, k, n, f) in enumerate([(7, 48, 7, 0), (1, 16, 3, 1), (12, 80, 4, 2), (32, 32, 6, 0),
                                             (5, 32, 5, 1)])]
    out.append(_m_tiled(cfg, 30, 48, 5, seed=5))  # M tiles inside one run: 30 rows in tiles of 8
    return out


def _m_tiled(cfg: ArrayConfig, m: int, k: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    from hwq.datatypes import DATATYPES
    from hwq.hw.stimulus import format_members

    members = format_members(cfg, 0)
    sel = rng.integers(0, len(members), size=(n, k // 16))
    scale = rng.integers(0, 1 << cfg.scale_bits, size=(n, k // 16))
    codes = rng.integers(0, 1 << DATATYPES[members[0]].bits, size=(n, k))
    x = rng.integers(-128, 128, size=(m, k))
    _, expected = layer_from_codes(cfg, x, codes, sel, scale, 16, 0)
    return pack_layer(cfg, x, codes, sel, scale, 16, 0, m_tile=8), expected


@pytest.mark.hw
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_stream_bit_and_cycle_exact(simulator: str, tmp_path) -> None:
    from hwq.hw import array_driver
    from hwq.verify.stream import run_stream

    cases = _layers(SMALL)
    # the same weights twice in a row: the second run streams no weights (the buffer keeps them)
    img0, exp0 = cases[-1]
    cases.append((dataclasses.replace(img0), exp0))
    images = [c[0] for c in cases]
    res = run_stream(SMALL, images, simulator=simulator)  # cached build (.hwq_cache/stream)
    assert len(res.runs) == len(images)
    for i, ((img, exp), run) in enumerate(zip(cases, res.runs)):
        got = unpack_outputs(SMALL, img, run.out_words)
        np.testing.assert_array_equal(got, exp, err_msg=f"run {i} on {simulator}")
        assert run.cycles == expected_cycles(SMALL, img), f"run {i}: cycles"
        if hasattr(array_driver, "expected_psum_accesses") and "psum_reads" in run.ports:
            assert (run.ports["psum_reads"], run.ports["psum_writes"]) == \
                tuple(array_driver.expected_psum_accesses(SMALL, img)), f"run {i}: psum accesses"
    assert any(img.m_tiles > 1 for img in images if hasattr(img, "m_tiles"))
    assert res.sim_cycles > sum(r.cycles for r in res.runs)


@pytest.mark.hw
def test_stream_detects_a_wrong_cycle_contract(tmp_path) -> None:
    """The comparison can fail: a run config that disagrees with its buffer image gives wrong outputs."""
    from hwq.verify.stream import run_stream

    img, exp = random_layer(SMALL, 6, 32, 4, 0, seed=1, group_size=16)
    short = dataclasses.replace(img, m=5)  # cfg says 5 rows: the array emits 5 rows per n tile
    res = run_stream(SMALL, [short], simulator="verilator")
    [run] = res.runs
    assert len(run.out_words) == short.n_tiles * 5 != img.n_tiles * img.m
    assert run.cycles != expected_cycles(SMALL, img)


def test_testbench_is_derived_from_the_array_signature() -> None:
    """Every PEArray port appears in the generated testbench; the cfg word follows run_layout."""
    from hwq.hw.array import run_layout
    from hwq.verify.stream import cfg_word, dut_ports, testbench_source

    tb = testbench_source(SMALL, 64, 64, 4)
    ports = dut_ports(SMALL)
    assert {"x_in__payload", "w_in__payload", "out__payload", "cfg", "start", "busy"} <= {p.name for p in ports}
    for p in ports:
        assert f".{p.name}(" in tb
    img, _ = random_layer(SMALL, 7, 48, 7, 0, seed=2, group_size=16)
    word = cfg_word(SMALL, img)
    for name, field in run_layout(SMALL):
        value = (word >> field.offset) & ((1 << field.width) - 1)
        if name in ("m", "k_tiles", "n_tiles", "fmt"):
            assert value == getattr(img, name)


@pytest.mark.slow
@pytest.mark.hw
@FULL_ARRAY
def test_whole_resnet50_layer_on_verilator(capsys) -> None:
    """`hwq sim` runs every output of a real ResNet-50 layer on the full bitmod array."""
    from hwq.cli.main import main

    code = main(["sim", "--arch", "bitmod", "--layer", "resnet50:layer3.1.conv2", "--simulator", "verilator",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err + out[-2000:]
    r = json.loads(out)
    assert r["ok"] and r["mismatches"] == 0
    assert r["tile"] == r["layer_gemm"] and r["outputs_compared"] == r["layer_gemm"]["m"] * r["layer_gemm"]["n"]
    assert r["measured_cycles"] == r["predicted_cycles"] > 0
    assert r["stream"].get("cost_model_equal") is True
    assert r["stream"]["build_dir"] == _full_array_build()  # the build the MiniLM and digits tests use


@pytest.mark.slow
@pytest.mark.hw
@FULL_ARRAY
def test_digits_network_on_verilator() -> None:
    """All 540 digits test images through the RTL: same classes as the golden model, hwq cost's cycles."""
    from hwq.verify.network import run_digits_network

    r = run_digits_network("bitmod", simulator="verilator")
    assert r.images == 540
    assert r.mismatches == 0
    assert r.class_agreement == 540
    assert r.measured_cycles == r.predicted_cycles == r.cost_model_cycles > 0
    assert r.rtl_accuracy == r.golden_accuracy > 0.9
    assert (Path(_full_array_build()) / "BUILT").is_file()  # the build the whole-layer tests use


@pytest.mark.slow
@pytest.mark.hw
@FULL_ARRAY
def test_minilm_encoder_layer_on_verilator(capsys) -> None:
    """A MiniLM encoder layer's six linear layers at the committed codesign plan's precisions (bitmod3
    and bitmod4), every output, bit-exact and cycle-exact."""
    from hwq.cli.main import main

    plan = Path(__file__).resolve().parents[1] / "reports/codesign/minilm_1.5mJ_bitmod_small/chosen/plan.json"
    code = main(["sim", "--arch", "bitmod", "--layer", "minilm:encoder.layer.0", "--simulator", "verilator",
                 "--plan", str(plan), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err + out[-2000:]
    r = json.loads(out)
    assert r["ok"] and len(r["layers"]) == 6
    assert {lay["precision"].split("/")[0] for lay in r["layers"]} == {"bitmod3", "bitmod4"}
    for lay in r["layers"]:
        assert lay["ok"] and lay["mismatches"] == 0 and lay["tile"] == lay["layer_gemm"]
        assert lay["measured_cycles"] == lay["predicted_cycles"] > 0
        assert lay["stream"]["build_dir"] == _full_array_build()  # one build for all six and for ResNet-50


@pytest.mark.parametrize("argv, needle", [
    (["sim"], "exactly one of --layer"),
    (["sim", "--layer", "digits_cnn:fc", "--network", "digits_cnn"], "exactly one of --layer"),
    (["sim", "--network", "resnet50"], "not supported"),
    (["sim", "--network", "digits_cnn", "--images", "0"], "--images"),
    (["sim", "--layer", "digits_cnn:no.such", "--simulator", "verilator"], "no.such"),
])
def test_sim_whole_layer_and_network_usage_errors(capsys, argv, needle) -> None:
    from hwq.cli.main import main

    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err, err
