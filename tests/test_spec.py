"""Accelerator spec loading and validation (hwq.spec)."""

from __future__ import annotations

import copy

import pytest
import yaml

from hwq.errors import UsageError
from hwq.spec import PRESETS, load_spec, parse_spec


def _base() -> dict:
    return load_spec("bitmod").to_dict()


def _err(data: dict) -> str:
    with pytest.raises(UsageError) as info:
        parse_spec(data)
    return str(info.value)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name):
    spec = load_spec(name)
    assert spec.name == name
    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec
    assert spec.choices(), "every preset offers at least one precision choice"
    for c in spec.choices():
        assert spec.supports(c.fmt, c.bits, c.act_bits)


def test_default_preset_is_bitmod_edge_with_hardware_fields():
    spec = load_spec(None)
    assert spec.name == "bitmod_edge" and spec.family == "asic" and spec.batch == 1
    assert spec.dram.technology == "lpddr4" and spec.dataflow.elide_psums
    spec = load_spec("bitmod")   # the BitMoD paper configuration
    assert spec.dataflow.modes == ("output_buffer",) and not spec.dataflow.elide_psums
    assert (spec.array.rows, spec.array.cols, spec.array.lanes) == (32, 32, 4)
    assert spec.arithmetic.mode == "bit_serial" and spec.arithmetic.bits_per_cycle == 2
    assert 8 in spec.arithmetic.act_bits and spec.arithmetic.group_size == 128
    assert ("bitmod", 4) in spec.arithmetic.weight_formats and ("int", 8) in spec.arithmetic.weight_formats
    assert spec.dram.energy_pj_per_bit == pytest.approx(1200 / 64)
    assert len(spec.choices()) == len(spec.arithmetic.weight_formats) * len(spec.arithmetic.act_bits)
    assert str(spec.choices()[0]) == "bitmod3/a4"


def test_parallel_and_fpga_presets():
    par = load_spec("int8_parallel")
    assert par.arithmetic.mode == "bit_parallel" and par.arithmetic.bits_per_cycle is None
    fpga = load_spec("fpga_zu")
    assert fpga.family == "fpga" and fpga.fpga.dsps == 1728 and fpga.fpga.luts == 230400


def test_negative_rows_names_the_field():
    d = _base()
    d["array"]["rows"] = -3
    assert _err(d) == "array.rows: must be a positive integer, got -3"


def test_enum_error_lists_allowed_values():
    d = _base()
    d["arithmetic"]["mode"] = "analog"
    msg = _err(d)
    assert msg.startswith("arithmetic.mode:") and "bit_serial" in msg and "bit_parallel" in msg


def test_missing_and_unknown_fields():
    d = _base()
    d["dram"] = {"bandwidth_gb_per_s": 32}          # no technology: both figures are required
    assert _err(d).startswith("dram.energy_pj_per_bit: missing")
    d = _base()
    d["buffers"]["weight"]["size"] = 3
    assert _err(d).startswith("buffers.weight.size: unknown field")
    d = _base()
    del d["buffers"]
    assert _err(d).startswith("buffers: missing")


def test_weight_format_and_bits_errors():
    d = _base()
    d["arithmetic"]["weight_formats"][0] = {"format": "posit", "bits": [4]}
    msg = _err(d)
    assert msg.startswith("arithmetic.weight_formats[0].format:") and "bitmod" in msg
    d = _base()
    d["arithmetic"]["weight_formats"][0] = {"format": "bitmod", "bits": [5]}
    msg = _err(d)
    assert msg.startswith("arithmetic.weight_formats[0].bits[0]:") and "3, 4" in msg


def test_bits_per_cycle_rules():
    d = _base()
    d["arithmetic"]["bits_per_cycle"] = 3
    assert _err(d).startswith("arithmetic.bits_per_cycle:")
    d = copy.deepcopy(load_spec("int8_parallel").to_dict())
    d["arithmetic"]["bits_per_cycle"] = 2
    assert _err(d).startswith("arithmetic.bits_per_cycle: must be null")


def test_negative_energy_and_tiny_weight_buffer():
    d = _base()
    d["buffers"]["output"]["read_energy_pj"] = -1
    assert _err(d).startswith("buffers.output.read_energy_pj:")
    d = _base()
    d["buffers"]["weight"]["capacity_kib"] = 1
    assert _err(d).startswith("buffers.weight.capacity_kib: must hold two array tiles")


def test_load_spec_file_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown accelerator 'nope'.*bitmod"):
        load_spec("nope")
    bad = tmp_path / "bad.yaml"
    d = _base()
    d["clock_mhz"] = 0
    bad.write_text(yaml.safe_dump(d))
    with pytest.raises(UsageError, match=r"^bad.yaml: clock_mhz: must be a positive number"):
        load_spec(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_spec(broken)
    good = tmp_path / "mine.yaml"
    good.write_text(load_spec("bitmod").to_yaml())
    assert load_spec(good).name == "bitmod"
