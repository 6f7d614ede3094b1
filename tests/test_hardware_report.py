"""Pieces of the hardware report generator: the K-hot section's verdict and the synthesis cache."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from hwq.reports.hardware_khot import KHOT, MUL_DSP, MUL_LUT, khot_section_lines
from hwq.reports.synth_cache import JsonCache, cache_key


def _res(lut: float, dsp: float = 0) -> dict[str, float]:
    return {"LUT": lut, "FF": 10, "CARRY": 3, "DSP": dsp, "other": 1}


def _routed(mhz: float) -> SimpleNamespace:
    """The fields of a hwq.hw.pnr.PnrResult the section reads."""
    return SimpleNamespace(fmax_mhz=mhz, fmax_by_seed={1: mhz, 2: mhz, 3: mhz})


def _lines(khot_lut: float, khot_dsp: float = 0, khot_mhz: float = 40.0) -> str:
    results = {t: {MUL_DSP: _res(100, 5), MUL_LUT: _res(1500), KHOT: _res(khot_lut, khot_dsp)}
               for t in ("xilinx", "ice40")}
    routed = {"fixed_datapath": _routed(35.0), "fixed_datapath_khot": _routed(khot_mhz)}
    return "\n".join(khot_section_lines(results, routed, khot=2, term_bits=5, shift_bits=3))


def test_khot_verdict_follows_the_numbers() -> None:
    assert "Winner on LUTs and DSPs: **K-hot**" in _lines(900)
    assert "Winner on LUTs and DSPs: **the multiplier datapath**" in _lines(1600)
    assert "Winner on LUTs and DSPs: **the multiplier datapath**" in _lines(900, khot_dsp=1)
    assert "(**K-hot** is faster)" in _lines(900, khot_mhz=40.0)
    assert "(**the multiplier datapath** is faster)" in _lines(900, khot_mhz=30.0)
    assert "| 900 | 1 | 3 | 0 | 900 | 3 | 0 | 40.0 | 22,500 |" in _lines(900)


def test_khot_section_says_when_timing_is_missing() -> None:
    results = {t: {MUL_DSP: _res(100, 5), MUL_LUT: _res(1500), KHOT: _res(900)} for t in ("xilinx", "ice40")}
    text = "\n".join(khot_section_lines(results, None, khot=2, term_bits=5, shift_bits=3))
    assert "not present" in text


def test_cache_key_depends_on_every_part_and_file_text() -> None:
    k = cache_key("synth", "top", files={"a.v": "module a; endmodule"})
    assert k == cache_key("synth", "top", files={"a.v": "module a; endmodule"})
    assert k != cache_key("synth", "top", files={"a.v": "module a ; endmodule"})
    assert k != cache_key("synth", "top2", files={"a.v": "module a; endmodule"})
    assert k != cache_key("synth", "top", files={"b.v": "module a; endmodule"})


def test_json_cache_computes_once_and_persists(tmp_path: Path) -> None:
    calls = []
    c = JsonCache(tmp_path / "c.json")
    assert c.get_or_compute("k", lambda: calls.append(1) or {"LUT": 3}) == {"LUT": 3}
    assert c.get_or_compute("k", lambda: calls.append(1) or {"LUT": 4}) == {"LUT": 3}
    assert JsonCache(tmp_path / "c.json").get_or_compute("k", lambda: {"LUT": 5}) == {"LUT": 3}
    assert calls == [1]
