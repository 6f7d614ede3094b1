"""Every ``family: fpga`` preset fits its device (by Yosys synthesis); over-full specs are rejected;
buffers are emitted at the spec's depths without per-word init."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from hwq.errors import UsageError
from hwq.hw.fit import (FIELDS, demand, fpga_presets, load_table, load_unchecked, synthesize_entries)
from hwq.spec import PRESET_DIR, PRESETS, load_spec, parse_spec

FPGA = fpga_presets()
#: The two synthesis tests below share one synthesis per preset (the ``fresh`` fixture, on the
#: file's one xdist worker: ``make test`` runs ``--dist loadfile``) and are collected first.
SYNTH_GROUP = pytest.mark.long_build


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """``fresh(preset)``: :func:`synthesize_entries` of the preset (its PE and decoder once each, and
    the ``pe_array`` top with both as black boxes: what :func:`demand` multiplies out), run once
    per preset for this module's tests, in a fresh folder (nothing read from a cache)."""
    done: dict[str, dict] = {}

    def get(preset: str) -> dict:
        if preset not in done:
            done[preset] = synthesize_entries(load_unchecked(preset), tmp_path_factory.mktemp(preset))
        return done[preset]
    return get


def _zu() -> dict:
    return yaml.safe_load((PRESET_DIR / "fpga_zu.yaml").read_text())


def test_there_is_an_fpga_preset() -> None:
    assert "fpga_zu" in FPGA


def test_overfull_array_is_rejected_naming_field_and_resource(tmp_path: Path, capsys) -> None:
    """16 x 32 PEs x 4 lanes at one multiply per DSP48E2: 2048 DSPs against the ZU7EV's 1728."""
    data = _zu()
    data["array"]["cols"] = 32
    with pytest.raises(UsageError) as err:
        parse_spec(data)
    msg = str(err.value)
    assert "\n" not in msg
    assert re.match(r"fpga\.dsps: array needs (at least )?2048 DSP48E2 \(512 PEs x 4\b", msg), msg
    assert msg.endswith("device xczu7ev has 1728")
    path = tmp_path / "zu32.yaml"
    path.write_text(yaml.safe_dump(data))
    from hwq.cli.main import main

    code = main(["cost", "--arch", str(path), "--model", "resnet50"])
    out, errtext = capsys.readouterr()
    assert code != 0 and "Traceback" not in errtext + out
    assert "fpga.dsps: array needs" in errtext


def test_overfull_block_ram_is_rejected() -> None:
    """The committed top's block RAMs against a device with too few of them."""
    data = _zu()
    data["fpga"]["bram_36k"] = 8
    with pytest.raises(UsageError, match=r"^fpga\.bram_blocks: .*needs"):
        parse_spec(data)


def test_each_resource_is_checked() -> None:
    """Shrinking any one device resource below the preset's need names that field."""
    spec = load_spec("fpga_zu")
    for res, need in demand(spec).items():
        if res not in FIELDS or need.needed == 0:
            continue
        data = _zu()
        field = FIELDS[res] if res != "BRAM" else "bram_36k"
        data["fpga"][field] = max(int(need.needed) - 1, 0)
        with pytest.raises(UsageError, match=rf"^fpga\.{FIELDS[res]}: "):
            parse_spec(data)


def test_fpga_schema_ice40_fields_and_legacy_name() -> None:
    data = _zu()
    f = data["fpga"]
    blocks = f.pop("bram_36k")
    f.update(bram_blocks=blocks, bram_block_kbits=36)
    assert parse_spec(copy.deepcopy(data)).fpga == load_spec("fpga_zu").fpga
    assert load_spec("fpga_zu").fpga.bram_36k == 312
    both = copy.deepcopy(data)
    both["fpga"]["bram_36k"] = 1
    with pytest.raises(UsageError, match=r"^fpga\.bram_36k: give either"):
        parse_spec(both)
    bad = copy.deepcopy(data)
    bad["fpga"]["synth_target"] = "ecp5"
    with pytest.raises(UsageError, match=r"^fpga\.synth_target: must be one of"):
        parse_spec(bad)
    neg = copy.deepcopy(data)
    neg["fpga"]["spram"] = -1
    with pytest.raises(UsageError, match=r"^fpga\.spram: must be a non-negative integer"):
        parse_spec(neg)
    round_trip = load_spec("fpga_zu")
    assert parse_spec(round_trip.to_dict()) == round_trip


def test_buffers_are_the_specs_size() -> None:
    """``hwq rtl`` depths: capacity / word width, no cap (the spec's MiBs, not 64 words)."""
    from hwq.hw.buffers import buffer_plan, word_bits
    from hwq.hw.presets import array_config_for

    for name in PRESETS:
        spec = load_unchecked(name)
        cfg = array_config_for(spec)
        plan = buffer_plan(spec, cfg)
        words = word_bits(cfg)
        for mem, (buf, field) in {"x_mem": ("activation", "x_depth"), "w_mem": ("weight", "w_depth"),
                                  "o_mem": ("output", "out_depth")}.items():
            depth = getattr(cfg, field)
            assert plan[mem].depth == depth and plan[mem].word_bits == words[mem]
            if plan[mem].buffer == "accumulators":
                assert depth == spec.accumulators.depth
                continue
            cap = spec.buffers[buf].capacity_kib * 8192
            assert depth * words[mem] <= cap < (depth + 1) * words[mem], (name, mem)
    zu = array_config_for(load_unchecked("fpga_zu"))
    assert min(zu.x_depth, zu.w_depth, zu.out_depth) > 1000


def test_buffers_are_emitted_without_per_word_init() -> None:
    """RAMs written before read carry no `initial` words; the decoder ROM keeps its contents."""
    from hwq.hw.array import PEArray, make_decoder
    from hwq.hw.config import ArrayConfig
    from hwq.hw.generate import to_verilog

    cfg = ArrayConfig(2, 2, 2, mode="bit_parallel", bits_per_cycle=None, formats=(("int", 8),), group_size=4,
                      x_depth=3000, w_depth=5000, out_depth=700)
    text = to_verilog(PEArray(cfg, hierarchical=True), "pe_array")
    for mem, depth in (("x_mem", 3000), ("w_mem", 5000), ("o_mem", 700)):
        assert re.search(rf"reg \[\d+:0\] {mem} \[{depth - 1}:0\];", text), mem
        assert f"{mem}[0] =" not in text
    assert "initial begin" not in text
    assert len(text) < 200_000
    rom = to_verilog(make_decoder(cfg), "dec")
    assert "initial begin" in rom and re.search(r"\[\d+\] = ", rom)


@pytest.mark.slow
@SYNTH_GROUP
def test_committed_leaf_numbers_are_current(fresh) -> None:
    """Re-synthesise each FPGA preset's PE and decoder; the committed table must hold the same."""
    table = load_table()
    for name in FPGA:
        for key, entry in fresh(name)["blocks"].items():
            assert key in table["blocks"], f"{key} missing from hwq/hw/fit_table.json; run python -m hwq.hw.fit --update"
            assert table["blocks"][key]["resources"] == entry["resources"], (
                f"{key}: hwq/hw/fit_table.json is stale; run python -m hwq.hw.fit --update")


@pytest.mark.slow
@SYNTH_GROUP
@pytest.mark.parametrize("preset", FPGA)
def test_preset_fits_its_device_by_synthesis(preset: str, fresh) -> None:
    """Hierarchical synthesis of the whole array (buffers at the spec's depths): every resource
    under 100 % of the device, buffers in block RAM, and the committed table equal to it."""
    spec = load_unchecked(preset)
    synthesised = fresh(preset)
    needs = demand(spec, synthesised)
    for res, need in needs.items():
        assert need.source == "synthesis", res
        assert need.utilisation < 1.0, f"{preset}: {res} {need.needed:g} of {need.available:g} ({need.detail})"
    assert needs["BRAM"].needed + needs["URAM"].needed + needs["SPRAM"].needed > 0, "buffers not in block RAM"
    table = load_table()
    for kind in ("blocks", "tops"):
        for key, entry in synthesised[kind].items():
            assert table[kind].get(key, {}).get("resources") == entry["resources"], (
                f"{key}: hwq/hw/fit_table.json is stale; run python -m hwq.hw.fit --update")
    load_spec(preset)  # and the spec validation accepts it
