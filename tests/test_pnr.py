"""Place and route on iCE40 (hwq.hw.pnr, `hwq synth --pnr`): harness, bitstream, routed clock of
every FPGA preset, one-line errors, and synthesis results independent of file paths and of the
blocks synthesised before.

Needs Yosys, nextpnr-ice40 and icepack (`apt-get install -y yosys nextpnr-ice40 fpga-icestorm`,
or `make setup`); a missing tool fails the test with that hint (hwq.hw.pnr.require_tool).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hwq.cli.main import main
from hwq.errors import HwqError, UsageError
from hwq.hw.pnr import ICE40_DEVICES, Port, harness_verilog, place_and_route, require_tool
from hwq.spec import PRESETS, load_spec

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).with_name("pnr_data")

#: FPGA devices with no open place-and-route on this machine, and why their preset clock cannot be
#: checked here. A new FPGA preset on a device missing from both this table and ICE40_DEVICES fails.
NO_OPEN_PNR = {
    "xczu7ev": "Zynq UltraScale+: no open P&R is installed (nextpnr-xilinx is not packaged in Debian; "
               "Vivado is proprietary), so fpga_zu's clock stays an assumption its YAML must call one",
}

FPGA_PRESETS = [p for p in PRESETS if load_spec(p).family == "fpga"]
ICE40_PRESETS = [p for p in FPGA_PRESETS if load_spec(p).fpga.device.lower() in ICE40_DEVICES]


def test_harness_registers_every_port(tmp_path: Path) -> None:
    """The harness wires each port bit once and compiles (Icarus) with the module it wraps."""
    ports = [Port("clk", "input", 1), Port("rst", "input", 1), Port("a", "input", 5), Port("y", "output", 3)]
    text, ffs = harness_verilog("blk", ports)
    assert ffs == (1 + 5) + 2 * 3
    assert ".clk(clk)" in text and ".rst(si[0:0])" in text and ".a(si[5:1])" in text and ".y(bo[2:0])" in text
    (tmp_path / "h.v").write_text(text)
    (tmp_path / "b.v").write_text("module blk(input clk, input rst, input [4:0] a, output reg [2:0] y);\n"
                                  "always @(posedge clk) y <= rst ? 3'd0 : a[2:0] + a[4:3];\nendmodule\n")
    iverilog = shutil.which("iverilog")
    assert iverilog, "iverilog missing: apt-get install -y iverilog (or make setup)"
    proc = subprocess.run([iverilog, "-o", str(tmp_path / "a.out"), str(tmp_path / "h.v"), str(tmp_path / "b.v")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(UsageError, match="inout"):
        harness_verilog("blk", [Port("io", "inout", 1)])


def test_design_that_does_not_fit_names_the_resource(tmp_path: Path) -> None:
    """1,400 flip-flops on a 1,280-LC HX1K: one line naming LC, used and available."""
    (tmp_path / "big.v").write_text("module big(input clk, input d, output q);\n  reg [1399:0] r = 0;\n"
                                    "  always @(posedge clk) r <= {r[1398:0], d ^ r[700]};\n"
                                    "  assign q = r[1399];\nendmodule\n")
    with pytest.raises(HwqError, match=r"does not fit ice40hx1k: LC \(ICESTORM_LC\) 14\d\d used, 1280 available"):
        place_and_route([tmp_path / "big.v"], "big", tmp_path / "w", device="ice40hx1k", seeds=(1,), bitstream=False)
    with pytest.raises(UsageError, match="cannot be placed and routed"):
        place_and_route([tmp_path / "big.v"], "big", tmp_path / "w", device="xczu7ev")


@pytest.fixture(scope="module")
def routed_presets(tmp_path_factory) -> dict:
    """Each iCE40 preset's full design (rtl/<preset>/pe_array.v with its PEs and decoders) routed
    with seed 1 (nextpnr is deterministic per seed) and packed to a bitstream."""
    out = {}
    for preset in ICE40_PRESETS:
        spec, folder = load_spec(preset), REPO / "rtl" / preset
        blocks = json.loads((folder / "blocks.json").read_text())["blocks"]
        out[preset] = place_and_route([folder / f for f in blocks["pe_array"]], "pe_array",
                                      tmp_path_factory.mktemp(preset), device=spec.fpga.device,
                                      package=spec.fpga.package, seeds=(1,))
    return out


def test_there_is_an_open_flow_preset() -> None:
    assert ICE40_PRESETS, "no FPGA preset on an iCE40 device: the open flow (Yosys, nextpnr, icepack) is untested"


@pytest.mark.slow
@pytest.mark.parametrize("preset", ICE40_PRESETS)
def test_ice40_preset_builds_a_bitstream_that_fits(preset: str, routed_presets: dict) -> None:
    r, spec = routed_presets[preset], load_spec(preset)
    data = Path(r.bitstream).read_bytes()
    assert b"\x7e\xaa\x99\x7e" in data[:64], "icepack output lacks the iCE40 sync word"
    assert len(data) > 30_000
    for name, (used, avail) in r.utilisation.items():
        assert used <= avail, f"{preset}: {name} {used}/{avail}"
    assert r.utilisation["LC"][1] == spec.fpga.luts, "the spec's LUT count is not the routed device's"
    assert r.utilisation["DSP"][1] == spec.fpga.dsps and r.utilisation["EBR"][1] == spec.fpga.bram_blocks


@pytest.mark.slow
@pytest.mark.parametrize("preset", FPGA_PRESETS)
def test_fpga_preset_clock_within_routed_fmax(preset: str, routed_presets: dict) -> None:
    """clock_mhz of an iCE40 preset <= the routed Fmax of its full RTL (seed 1; the YAML's clock is
    the lowest of seeds 1-3 rounded down). Devices without open P&R: the YAML must say the clock
    is assumed, and the device must be listed in NO_OPEN_PNR with the reason."""
    spec = load_spec(preset)
    device = spec.fpga.device.lower()
    if device in ICE40_DEVICES:
        r = routed_presets[preset]
        assert spec.clock_mhz <= r.fmax_mhz, (
            f"{preset}: clock_mhz {spec.clock_mhz} exceeds the routed Fmax {r.fmax_mhz:.1f} MHz of rtl/{preset}; "
            f"lower it (measure: hwq synth DIR --target ice40 --pnr --blocks pe_array)")
        return
    assert device in NO_OPEN_PNR, f"{preset}: device {device} has no routed-clock check; add P&R or a reason"
    text = (REPO / "hwq" / "presets" / f"{preset}.yaml").read_text()
    assert re.search(r"clock[^\n]*assumed", text, re.I), (
        f"{preset}: its clock is not routed here ({NO_OPEN_PNR[device]}); the YAML must say the clock is assumed")


@pytest.mark.slow
def test_synth_cli_pnr(tmp_path: Path, capsys) -> None:
    """`hwq synth --target ice40 --pnr` on the iCE40 preset's decoder: Fmax in JSON/Markdown, bitstream."""
    preset = ICE40_PRESETS[0]
    folder = tmp_path / preset
    shutil.copytree(REPO / "rtl" / preset, folder)
    assert main(["synth", str(folder), "--target", "ice40", "--pnr", "--blocks", "hwq_decoder", "--seeds", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["pnr"][load_spec(preset).fpga.device]["hwq_decoder"]
    assert r["fmax_mhz"] > 0 and list(r["fmax_by_seed"]) == ["1"]
    assert (folder / f"hwq_decoder.{r['device']}.bin").stat().st_size > 30_000
    assert json.loads((folder / "resources.json").read_text())["pnr"][r["device"]]["hwq_decoder"] == r
    assert "Place and route" in (folder / "resources.md").read_text()
    assert main(["synth", str(folder), "--pnr"]) == 2
    assert "--target ice40" in capsys.readouterr().err
    assert main(["synth", str(folder), "--target", "ice40", "--seeds", "1"]) == 2
    assert main(["synth", str(folder), "--target", "ice40", "--pnr", "--seeds", "a,b"]) == 2
    assert main(["synth", str(folder), "--target", "ice40", "--pnr", "--device", "xc7a35t"]) == 2
    err = capsys.readouterr().err
    assert "integers" in err and "cannot be placed and routed" in err and "Traceback" not in err


@pytest.mark.slow
def test_synthesis_independent_of_path_and_previous_blocks(tmp_path: Path) -> None:
    """The same decoder Verilog, read from two folders under two names, once alone and once after
    another block in the same `synthesize` call, gives identical cells. (Yosys keeps identifiers
    across `design -reset`, so a block synthesised after others in one process maps differently:
    248 vs 249 Xilinx LUTs for this decoder; tests/pnr_data holds the Verilog that showed it.)"""
    from hwq.hw.synth import synthesize

    a, b = tmp_path / "a", tmp_path / "some" / "other" / "folder"
    a.mkdir()
    b.mkdir(parents=True)
    shutil.copyfile(DATA / "hwq_decoder.v", a / "hwq_decoder.v")
    shutil.copyfile(DATA / "hwq_decoder.v", b / "dec_copy.v")
    shutil.copyfile(DATA / "dequant.v", b / "dequant.v")
    alone = synthesize({"hwq_decoder": [a / "hwq_decoder.v"]}, "xilinx", tmp_path / "w1")
    after = synthesize({"dequant": [b / "dequant.v"], "hwq_decoder": [b / "dec_copy.v"]}, "xilinx", tmp_path / "w2")
    assert alone["hwq_decoder"]["cells"] == after["hwq_decoder"]["cells"]


def test_missing_tool_names_the_install(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HwqError, match="apt-get install -y nextpnr-ice40 fpga-icestorm"):
        require_tool("nextpnr-ice40")
