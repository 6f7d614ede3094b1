"""Does an FPGA spec's array fit its device? Demand from per-block synthesis numbers.

The array is synthesised hierarchically (:mod:`hwq.hw.synth`, the spec's ``fpga.synth_target``):

* the PE (``hwq_pe``) and the weight decoder (``hwq_decoder``) once each, counted per
  instance (``rows x cols`` PEs, ``cols x lanes`` decoders);
* the top ``pe_array`` with both as black boxes: sequencer, dequantizers and the three buffers
  at the spec's depths (:mod:`hwq.hw.buffers`), mapped to block RAM / URAM / SPRAM.

Their resources are committed in :data:`TABLE` (``hwq/hw/fit_table.json``), written by
``python -m hwq.hw.fit --update`` (which synthesises every ``family: fpga`` preset) and checked
against a fresh synthesis by ``tests/test_fpga_fit.py``. :func:`check_fit` (run by
``hwq.spec.parse_spec`` for every FPGA spec) reads the table: a spec whose array needs more of a
resource than its device has fails with one line naming the field, e.g.
``fpga.dsps: array needs 2048 DSP48E2 (512 PEs x 4), device has 1728``.

A spec whose blocks are not in the table (another geometry or format list) is checked with what
is known: the PE and decoder entries when their configuration is in the table (they do not
depend on rows and cols), else ``ceil(lanes / macs_per_dsp)`` DSPs per bit-parallel PE; the top
logic is then left out and the buffers are checked by their bits against the device's RAM bits.
:func:`demand` says which (``source`` of each :class:`Need`): a lower bound, never a guess above.

Device resources compared (datasheet counts of :class:`hwq.spec.FpgaSpec`): LUT (logic LUTs
plus LUTRAM cells), FF, DSP, BRAM (36 Kb equivalents on Xilinx, 4 Kb EBR on iCE40), URAM, SPRAM.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from hwq.errors import UsageError

TABLE = Path(__file__).with_name("fit_table.json")
#: Resources compared with the device, and the ``fpga`` field each is checked against.
FIELDS = {"LUT": "luts", "FF": "ffs", "DSP": "dsps", "BRAM": "bram_blocks", "URAM": "uram", "SPRAM": "spram"}
#: Cell names in messages, per synthesis target.
CELL_NAMES = {
    "xilinx": {"LUT": "LUT", "FF": "FF", "DSP": "DSP48E1", "BRAM": "RAMB36", "URAM": "URAM288", "SPRAM": "SPRAM"},
    "xcup": {"LUT": "LUT", "FF": "FF", "DSP": "DSP48E2", "BRAM": "RAMB36", "URAM": "URAM288", "SPRAM": "SPRAM"},
    "ice40": {"LUT": "LUT4", "FF": "FF", "DSP": "SB_MAC16", "BRAM": "SB_RAM40_4K", "URAM": "URAM",
              "SPRAM": "SB_SPRAM256KA"},
}


@dataclass(frozen=True)
class Need:
    """Demand for one resource: ``needed`` (cells) of ``available`` on the device; ``detail``
    says how it adds up; ``source`` is ``synthesis`` (every block from the table) or
    ``lower bound`` (some part missing from the table, see the module docstring)."""

    resource: str
    needed: float
    available: float
    detail: str
    source: str

    @property
    def utilisation(self) -> float:
        """``needed / available`` (inf when the device has none and some is needed)."""
        if self.available:
            return self.needed / self.available
        return math.inf if self.needed else 0.0


# ---- table keys -----------------------------------------------------------------------------
def block_key(cfg, module: str, target: str) -> str:
    """Table key of a replicated block: what its Verilog depends on (not rows, cols, depths)."""
    fmts = ",".join(f"{f}{b}" for f, b in cfg.formats)
    return (f"{module}|{target}|{cfg.mode}|bpc={cfg.bpc}|act={cfg.act_bits}|lanes={cfg.lanes}|"
            f"group={cfg.group_size}|fmts={fmts}")


def top_key(cfg, target: str, styles: Mapping[str, str] | None = None) -> str:
    """Table key of the ``pe_array`` top (the whole configuration, depths and the buffers'
    ``ram_style`` attributes included)."""
    blob = json.dumps({"cfg": asdict(cfg), "target": target, "ram_styles": dict(styles or {})}, sort_keys=True,
                      default=str)
    return f"pe_array|{target}|{hashlib.sha1(blob.encode()).hexdigest()[:16]}"


def load_table(path: Path = TABLE) -> dict[str, Any]:
    """The committed table (``{"blocks": {key: entry}, "tops": {key: entry}}``; empty if absent)."""
    if not Path(path).is_file():
        return {"blocks": {}, "tops": {}}
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: not valid JSON ({err.msg}); regenerate it with "
                         "`python -m hwq.hw.fit --update`") from None
    return {"blocks": data.get("blocks", {}), "tops": data.get("tops", {})}


# ---- demand ---------------------------------------------------------------------------------
def _device(fpga, res: str) -> float:
    return float(fpga.bram_36k if (res == "BRAM" and fpga.synth_target != "ice40") else getattr(fpga, FIELDS[res]))


def _cells(res: Mapping[str, float], key: str) -> float:
    return float(res.get(key, 0)) + (float(res.get("LUTRAM", 0)) if key == "LUT" else 0.0)


def device_utilisation(resources: Mapping[str, float], fpga) -> dict[str, float]:
    """Fraction of ``fpga``'s device each resource of one synthesis result uses, keyed by the
    lower-case resource name (``lut``, ``ff``, ``dsp``, ``bram``, ``uram``, ``spram``); LUTRAM counts
    as LUTs, BRAM in the device's own block size; inf when the device has none of a resource used."""
    return {res.lower(): Need(res, _cells(resources, res), _device(fpga, res), "", "synthesis").utilisation
            for res in FIELDS}


def array_config(spec):
    """The spec's full-size array configuration (buffers at the spec's depths), or None if the
    array cannot run any of its weight formats."""
    from hwq.hw.presets import array_config_for

    try:
        return array_config_for(spec)
    except ValueError:
        return None


def demand(spec, table: Mapping[str, Any] | None = None) -> dict[str, Need]:
    """Per resource (:data:`FIELDS`), what ``spec``'s array needs of its device."""
    from hwq.hw.array import DECODER_MODULE, PE_MODULE

    fpga = spec.fpga
    table = load_table() if table is None else table
    target = fpga.synth_target
    a = spec.array
    n_pe, n_dec = a.rows * a.cols, a.cols * a.lanes
    cfg = array_config(spec)
    pe = dec = top = None
    if cfg is not None:
        pe = table["blocks"].get(block_key(cfg, PE_MODULE, target))
        dec = table["blocks"].get(block_key(cfg, DECODER_MODULE, target))
        from hwq.hw.buffers import ram_styles

        top = table["tops"].get(top_key(cfg, target, ram_styles(spec)))
    out: dict[str, Need] = {}
    for res in FIELDS:
        parts, total, exact = [], 0.0, top is not None and pe is not None and dec is not None
        if pe is not None:
            per = _cells(pe["resources"], res)
            total += n_pe * per
            if per:
                parts.append(f"{n_pe} PEs x {per:g}")
        elif res == "DSP" and spec.arithmetic.mode == "bit_parallel":
            per = math.ceil(a.lanes / fpga.macs_per_dsp)
            total += n_pe * per
            parts.append(f"{n_pe} PEs x {per} (lanes / macs_per_dsp; no synthesised PE)")
        if dec is not None:
            per = _cells(dec["resources"], res)
            total += n_dec * per
            if per:
                parts.append(f"{n_dec} decoders x {per:g}")
        if top is not None:
            t = _cells(top["resources"], res)
            total += t
            if t:
                parts.append(f"top {t:g}")
        out[res] = Need(res, total, _device(fpga, res), " + ".join(parts) or "none",
                        "synthesis" if exact else "lower bound")
    if top is None and cfg is not None:
        out["RAM bits"] = _ram_bits_need(spec, cfg)
    return out


def _ram_bits_need(spec, cfg) -> Need:
    """Buffer bits against the device's block RAM + URAM + SPRAM bits (no synthesised top)."""
    from hwq.hw.buffers import buffer_plan

    plan = buffer_plan(spec, cfg)
    f = spec.fpga
    bits = sum(p.bits for p in plan.values())
    have = f.bram_bits + f.uram_bits + f.spram_bits
    return Need("RAM bits", float(bits), float(have), " + ".join(f"{m} {p.word_bits}x{p.depth}" for m, p in plan.items()),
                "lower bound")


def check_fit(spec, table: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`UsageError` (one line, naming the ``fpga`` field) if ``spec``'s array needs
    more of any resource than its device has (:func:`demand`)."""
    fpga = spec.fpga
    names = CELL_NAMES[fpga.synth_target]
    for res, need in demand(spec, table).items():
        if need.needed <= need.available:
            continue
        if res == "RAM bits":
            raise UsageError(f"fpga.bram_blocks: buffers need {need.needed / 1024:.0f} Kbit ({need.detail}), device "
                             f"{fpga.device} has {need.available / 1024:.0f} Kbit of block RAM + URAM + SPRAM")
        bound = "at least " if need.source != "synthesis" else ""
        raise UsageError(f"fpga.{FIELDS[res]}: array needs {bound}{need.needed:g} {names[res]} ({need.detail}), "
                         f"device {fpga.device} has {need.available:g}")


# ---- synthesis: the table's entries -----------------------------------------------------------
def synthesize_entries(spec, workdir: Path, *, top: bool = True) -> dict[str, dict[str, Any]]:
    """Synthesise ``spec``'s PE, decoder and (``top``) ``pe_array`` top for its ``synth_target``;
    return ``{"blocks": {key: entry}, "tops": {key: entry}}`` as :data:`TABLE` holds them."""
    from hwq.hw.array import array_blocks
    from hwq.hw.generate import to_verilog
    from hwq.hw.synth import classify, synthesize

    cfg = array_config(spec)
    if cfg is None:
        raise UsageError(f"spec {spec.name!r}: the PE array runs none of its weight formats; nothing to synthesise")
    target = spec.fpga.synth_target
    workdir = Path(workdir)
    src = workdir / "src"
    src.mkdir(parents=True, exist_ok=True)
    leaves = {}
    for module, block in array_blocks(cfg).items():
        leaves[module] = src / f"{module}.v"
        leaves[module].write_text(to_verilog(block, module))
    res = synthesize({m: [f] for m, f in leaves.items()}, target, workdir / "leaves")
    out: dict[str, dict[str, Any]] = {"blocks": {}, "tops": {}}
    for module in leaves:
        out["blocks"][block_key(cfg, module, target)] = {"module": module, "target": target, "spec": spec.name,
                                                         "resources": res[module]["resources"]}
    if top:
        from hwq.hw.presets import array_top

        # the very top `hwq rtl` writes (buffers at the spec's depths, their ram_style attributes)
        (src / "pe_array.v").write_text(to_verilog(array_top(spec, cfg), "pe_array"))
        t = synthesize({"pe_array": [src / "pe_array.v"]}, target, workdir / "top",
                       libs={"pe_array": list(leaves.values())})
        cells = t["pe_array"]["cells"]
        from hwq.hw.buffers import ram_styles

        out["tops"][top_key(cfg, target, ram_styles(spec))] = {
            "spec": spec.name, "target": target,
            "depths": {"x_depth": cfg.x_depth, "w_depth": cfg.w_depth, "out_depth": cfg.out_depth},
            "instances": {k: v for k, v in cells.items() if k in leaves},
            "resources": classify({k: v for k, v in cells.items() if k not in leaves}, target)}
    return out


def fpga_presets() -> list[str]:
    """Presets with ``family: fpga`` (read without the fit check, which needs this table)."""
    import yaml

    from hwq.spec import PRESET_DIR, PRESETS

    return [p for p in PRESETS if yaml.safe_load((PRESET_DIR / f"{p}.yaml").read_text()).get("family") == "fpga"]


def load_unchecked(name: str):
    """Preset ``name`` parsed without :func:`check_fit` (to synthesise a preset that does not fit yet)."""
    import yaml

    from hwq.spec import PRESET_DIR, parse_spec

    data = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text())
    return parse_spec(data, str(PRESET_DIR / f"{name}.yaml"), check_device=False)


def update_table(path: Path = TABLE, presets: list[str] | None = None) -> dict[str, Any]:
    """Synthesise every FPGA preset (or ``presets``) and write :data:`TABLE` (entries of other
    presets are kept). Returns the table."""
    import tempfile

    from hwq.atomic import write_text

    table = load_table(path)
    for name in presets or fpga_presets():
        spec = load_unchecked(name)
        for kind in ("blocks", "tops"):  # drop the preset's stale entries
            table[kind] = {k: v for k, v in table[kind].items() if v.get("spec") != name}
        with tempfile.TemporaryDirectory(prefix=f"hwq_fit_{name}_") as tmp:
            new = synthesize_entries(spec, Path(tmp))
        for kind in ("blocks", "tops"):
            table[kind].update(new[kind])
    doc = {"comment": "Per-block Yosys resources of the FPGA presets (hwq.hw.fit); regenerate with "
                      "`python -m hwq.hw.fit --update`; tests/test_fpga_fit.py checks they are current.",
           "blocks": dict(sorted(table["blocks"].items())), "tops": dict(sorted(table["tops"].items()))}
    write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    """``python -m hwq.hw.fit [--update] [PRESET ...]``: print (or first regenerate) the fit of FPGA presets."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hwq.hw.fit", description=main.__doc__)
    ap.add_argument("presets", nargs="*", help="FPGA presets (default: every family: fpga preset)")
    ap.add_argument("--update", action="store_true", help="synthesise and rewrite hwq/hw/fit_table.json")
    args = ap.parse_args(argv)
    names = args.presets or fpga_presets()
    if args.update:
        update_table(presets=names)
    for name in names:
        spec = load_unchecked(name)
        for res, n in demand(spec).items():
            print(f"{name} {res}: {n.needed:g} / {n.available:g} = {100 * n.utilisation:.1f} % ({n.detail}; {n.source})")
    return 0


if __name__ == "__main__":
    import sys

    try:
        sys.exit(main())
    except UsageError as err:
        sys.exit(f"error: {err}")
