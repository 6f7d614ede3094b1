"""Accelerator specification: one validated YAML file per accelerator (DESIGN.md section 3).

``load_spec(name_or_path)`` reads a preset from ``hwq/presets/<name>.yaml`` or any YAML file
and returns an :class:`AcceleratorSpec`. Every field carries its unit in its name
(``clock_mhz``, ``capacity_kib``, ``access_bits``, ``read_energy_pj``, ``bandwidth_gb_per_s``,
``energy_pj_per_bit``, ``static_power_mw``). An invalid spec raises
:class:`hwq.errors.UsageError` whose message names the field path, e.g.
``array.rows: must be a positive integer, got -3``.

Schema (all keys required unless marked optional)::

    name: str                       # preset name
    family: asic | fpga
    description: str                # optional
    clock_mhz: float > 0
    array: {rows: int, cols: int, lanes: int}
    arithmetic:
      mode: bit_serial | bit_parallel
      bits_per_cycle: int           # even >= 2 when bit_serial; null when bit_parallel
      act_bits: [int, ...]          # supported activation precisions, bits
      accumulator_bits: int         # partial-sum width, bits (psum buffer traffic)
      group_size: int               # weights per quantization group (metadata), >= 1
      weight_formats:               # supported (format family, bits) pairs
        - {format: bitmod, bits: [3, 4]}
    compute:
      pe_cycle_energy_pj: float     # energy of one active PE for one cycle at the reference precisions
      reference_act_bits: int       # activation width at which pe_cycle_energy_pj was measured
      reference_weight_bits: int    # bit-parallel only: weight width of the reference
      pnr_factor: float             # place-and-route multiplier on compute energy (BitMoD: 1.5)
      energy_scaling: act_bits | weight_and_act_bits | none   # optional, see below
    buffers:                        # on-chip SRAM per operand: weight, activation, output
      weight: {capacity_kib, access_bits, read_energy_pj, write_energy_pj}
      activation: {...}
      output: {...}
    dram:                           # off-chip memory
      technology: ddr4 | lpddr4 | lpddr4x | lpddr5 | hbm2   # optional: a row of hwq.dram.TECHNOLOGIES
      channels: int                 # optional (default 1): bandwidth = channels x per-channel GB/s
      bandwidth_gb_per_s: float     # required without technology, else an override
      energy_pj_per_bit: float      # required without technology, else an override (cite it)
    static_power_mw: float >= 0
    fpga:                           # family fpga only (required then); datasheet counts of the device
      device: str                   # part, lower case (xczu7ev, ice40up5k, ice40hx8k)
      synth_target: xilinx | xcup | ice40   # optional Yosys flow (default from the device name, see
                                            # hwq.spec.default_synth_target)
      package: str                  # optional: package for place and route (sg48, ct256)
      luts: int, ffs: int           # logic LUTs (LUT6 Xilinx, LUT4 iCE40) and flip-flops
      dsps: int >= 0                # DSP slices (DSP48E2/DSP48E1/SB_MAC16); optional, default 0
      macs_per_dsp: int             # optional (default 1): MACs one DSP computes per cycle
      bram_blocks: int >= 0         # block RAMs (Xilinx RAMB36, iCE40 EBR SB_RAM40_4K) ...
      bram_block_kbits: int         # ... of this many Kbit each (default 36; iCE40: 4)
      bram_36k: int                 # legacy name: bram_blocks of 36 Kbit (give one of the two)
      uram: int >= 0                # optional: Xilinx URAM288 blocks (288 Kbit each)
      spram: int >= 0               # optional: iCE40 SB_SPRAM256KA blocks (256 Kbit each)
    batch: int >= 1                 # optional (default 1): images per weight load; --batch overrides
    dataflow:                       # optional
      modes: [output_buffer, accumulate_in_array]   # loop nests the array runs (default [output_buffer])
      partial_sums: read_modify_write | elide_first_last   # default read_modify_write
    accumulators:                   # required when dataflow.modes has accumulate_in_array
      {depth, access_bits, read_energy_pj, write_energy_pj}   # per-column psum register files
    vector_unit:                    # optional: element-wise ops (residual add, pooling, softmax...)
      {lanes, op_energy_pj, reference_act_bits}   # default: array.cols lanes, Horowitz INT8 add

Dataflows (cycles and psum accesses: ``hwq.timing``; costs: ``hwq.cost``): ``output_buffer``
streams all M rows of a layer through each weight tile and read-modify-writes the ``[M, cols]``
partial-sum block in the output buffer across K tiles; ``accumulate_in_array`` walks M tiles of
at most ``accumulators.depth`` rows and keeps their partial sums in per-column accumulator
register files across all K tiles (the output buffer carries no partial sums), re-reading the
weight tiles from the weight buffer once per M tile. ``partial_sums: elide_first_last``: the
first K tile writes without reading and the last K tile's result goes to requantization without
a write-back (a one-K-tile layer never touches the partial-sum memory).

PE energy formula (used by ``hwq.cost``), in pJ per active PE per cycle, by
``compute.energy_scaling`` (default ``act_bits`` when bit-serial, ``weight_and_act_bits``
when bit-parallel)::

    act_bits:            pe_cycle_energy_pj * pnr_factor * act_bits / reference_act_bits
    weight_and_act_bits: pe_cycle_energy_pj * pnr_factor * (weight_bits * act_bits)
                                            / (reference_weight_bits * reference_act_bits)
    none:                pe_cycle_energy_pj * pnr_factor

(a bit-serial PE's shift-add datapath is as wide as the activation; a bit-parallel
multiplier array grows with the product of the operand widths; a fixed-width FPGA DSP
costs the same whatever the operand width).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hwq.datatypes import FORMAT_BITS, resolve
from hwq.errors import UsageError

PRESET_DIR = Path(__file__).with_name("presets")
_CORE_PRESETS = ("bitmod_edge", "bitmod", "int8_parallel", "fpga_zu")
#: Preset names shipped with hwq (``hwq/presets/<name>.yaml``); the first is the default. The
#: core presets come first, then every other YAML file of the folder, sorted by name.
PRESETS: tuple[str, ...] = _CORE_PRESETS + tuple(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")
                                                        if p.stem not in _CORE_PRESETS))
DEFAULT_PRESET = "bitmod_edge"

FAMILIES = ("asic", "fpga")
MODES = ("bit_serial", "bit_parallel")
ENERGY_SCALINGS = ("act_bits", "weight_and_act_bits", "none")
BUFFER_NAMES = ("weight", "activation", "output")
DATAFLOWS = ("output_buffer", "accumulate_in_array")
PARTIAL_SUMS = ("read_modify_write", "elide_first_last")

#: Element-wise op energy when a spec gives no ``vector_unit``: Horowitz (ISSCC 2014), 45 nm,
#: 8-bit integer add 0.03 pJ (DESIGN.md section 3); one op = one add, compare or multiply-by-constant.
DEFAULT_VECTOR_OP_ENERGY_PJ = 0.03
DEFAULT_VECTOR_REFERENCE_BITS = 8


@dataclass(frozen=True)
class ArraySpec:
    """PE array geometry: ``rows`` x ``cols`` PEs, each a ``lanes``-wide dot product."""

    rows: int
    cols: int
    lanes: int

    @property
    def pes(self) -> int:
        """Number of PEs."""
        return self.rows * self.cols


@dataclass(frozen=True)
class ArithmeticSpec:
    """What the PEs compute: bit-serial radix, supported precisions and formats."""

    mode: str
    bits_per_cycle: int | None
    act_bits: tuple[int, ...]
    weight_formats: tuple[tuple[str, int], ...]
    group_size: int
    accumulator_bits: int = 32


@dataclass(frozen=True)
class ComputeEnergySpec:
    """PE energy: ``pe_cycle_energy_pj`` per active PE-cycle at the reference precisions."""

    pe_cycle_energy_pj: float
    reference_act_bits: int
    reference_weight_bits: int | None = None
    pnr_factor: float = 1.0
    energy_scaling: str = "act_bits"

    def pe_cycle_pj(self, weight_bits: Any, act_bits: Any) -> Any:
        """Energy of one active PE for one cycle, pJ (formula in the module docstring).

        Works on scalars or numpy arrays of ``weight_bits``/``act_bits`` (bits).
        """
        base = self.pe_cycle_energy_pj * self.pnr_factor
        if self.energy_scaling == "none":
            return base + 0 * act_bits * weight_bits
        base = base * act_bits / self.reference_act_bits
        if self.energy_scaling == "weight_and_act_bits":
            base = base * weight_bits / self.reference_weight_bits
        return base


@dataclass(frozen=True)
class BufferSpec:
    """One on-chip SRAM: capacity (KiB), access width (bits) and energy per access (pJ)."""

    capacity_kib: float
    access_bits: int
    read_energy_pj: float
    write_energy_pj: float

    @property
    def capacity_bits(self) -> float:
        """Capacity in bits."""
        return self.capacity_kib * 1024 * 8


@dataclass(frozen=True)
class DramSpec:
    """Off-chip memory: bandwidth (GB/s, 1 GB = 1e9 bytes) and energy per bit moved (pJ).

    ``technology`` names the row of :data:`hwq.dram.TECHNOLOGIES` the figures come from
    (``"custom"`` when the spec states both numbers itself); ``channels`` multiplies its bandwidth.
    """

    bandwidth_gb_per_s: float
    energy_pj_per_bit: float
    technology: str = "custom"
    channels: int = 1


@dataclass(frozen=True)
class DataflowSpec:
    """Loop nests the array runs (``modes``, see the module docstring) and partial-sum handling."""

    modes: tuple[str, ...] = ("output_buffer",)
    partial_sums: str = "read_modify_write"

    @property
    def elide_psums(self) -> bool:
        """First K tile writes without reading; last K tile skips the write-back."""
        return self.partial_sums == "elide_first_last"


@dataclass(frozen=True)
class AccumulatorSpec:
    """Per-column partial-sum register files of the ``accumulate_in_array`` dataflow.

    ``depth``: psum rows (of ``cols`` accumulators) each holds; energies in pJ per access of
    ``access_bits`` bits.
    """

    depth: int
    access_bits: int
    read_energy_pj: float
    write_energy_pj: float


@dataclass(frozen=True)
class VectorUnitSpec:
    """Element-wise unit: ``lanes`` ops per cycle, ``op_energy_pj`` per op at ``reference_act_bits``
    (scaled linearly with the activation width)."""

    lanes: int
    op_energy_pj: float
    reference_act_bits: int

    def op_pj(self, act_bits):
        """Energy of one element-wise op at ``act_bits`` (pJ; scalar or numpy array)."""
        return self.op_energy_pj * act_bits / self.reference_act_bits


#: Yosys flows an FPGA spec's ``fpga.synth_target`` may name (:mod:`hwq.hw.synth`).
SYNTH_TARGETS = ("xilinx", "xcup", "ice40")
#: Device-name prefixes of Xilinx UltraScale+ parts (synthesised with ``synth_xilinx -family xcup``).
XCUP_PREFIXES = ("xczu", "xcku", "xcvu", "xcau", "xck26")
URAM_KBITS = 288
SPRAM_KBITS = 256


def default_synth_target(device: str) -> str:
    """Yosys flow for ``device``: ``ice40`` for ice40*, ``xcup`` for UltraScale+ parts, else ``xilinx``."""
    d = device.lower()
    if d.startswith("ice40"):
        return "ice40"
    if d.startswith(XCUP_PREFIXES):
        return "xcup"
    return "xilinx"


@dataclass(frozen=True)
class FpgaSpec:
    """FPGA resources of the target device (datasheet counts) and DSP packing.

    ``luts``: logic LUTs (LUT6 on Xilinx, LUT4 on iCE40); ``bram_blocks`` block RAMs of
    ``bram_block_kbits`` Kbit each; ``uram``: URAM288 blocks (288 Kbit); ``spram``: iCE40
    SB_SPRAM256KA blocks (256 Kbit); ``synth_target``: the Yosys flow that maps RTL to the device.
    """

    device: str
    luts: int
    ffs: int
    dsps: int
    bram_blocks: int
    uram: int = 0
    macs_per_dsp: int = 1
    bram_block_kbits: int = 36
    spram: int = 0
    synth_target: str = "xilinx"
    package: str = ""

    @property
    def bram_36k(self) -> float:
        """Block RAM in 36 Kbit equivalents (the legacy field)."""
        return self.bram_blocks * self.bram_block_kbits / 36

    @property
    def bram_bits(self) -> int:
        """Block RAM capacity (bits)."""
        return self.bram_blocks * self.bram_block_kbits * 1024

    @property
    def uram_bits(self) -> int:
        """URAM capacity (bits)."""
        return self.uram * URAM_KBITS * 1024

    @property
    def spram_bits(self) -> int:
        """SPRAM capacity (bits)."""
        return self.spram * SPRAM_KBITS * 1024


@dataclass(frozen=True)
class AcceleratorSpec:
    """A whole accelerator, as read from one YAML file (see the module docstring)."""

    name: str
    family: str
    clock_mhz: float
    array: ArraySpec
    arithmetic: ArithmeticSpec
    compute: ComputeEnergySpec
    buffers: dict[str, BufferSpec]
    dram: DramSpec
    static_power_mw: float
    description: str = ""
    fpga: FpgaSpec | None = None
    batch: int = 1
    dataflow: DataflowSpec = field(default_factory=DataflowSpec)
    accumulators: AccumulatorSpec | None = None
    vector_unit: VectorUnitSpec | None = None
    source: str = field(default="", compare=False)

    @property
    def vector(self) -> VectorUnitSpec:
        """The element-wise unit (the spec's, else ``array.cols`` lanes at the Horowitz INT8 add)."""
        return self.vector_unit or VectorUnitSpec(self.array.cols, DEFAULT_VECTOR_OP_ENERGY_PJ,
                                                  DEFAULT_VECTOR_REFERENCE_BITS)

    @property
    def dram_bits_per_cycle(self) -> float:
        """DRAM bits transferred per accelerator clock cycle."""
        return self.dram.bandwidth_gb_per_s * 8e9 / (self.clock_mhz * 1e6)

    def supports(self, fmt: str, bits: int, act_bits: int) -> bool:
        """Whether weight ``fmt``/``bits`` with ``act_bits`` activations runs on this accelerator."""
        return (fmt, bits) in self.arithmetic.weight_formats and act_bits in self.arithmetic.act_bits

    def choices(self) -> list:
        """Every supported precision choice: weight formats x activation precisions (``hwq.cost.Choice``)."""
        from hwq.cost import Choice

        return [Choice(fmt, bits, a) for (fmt, bits) in self.arithmetic.weight_formats
                for a in self.arithmetic.act_bits]

    def to_dict(self) -> dict[str, Any]:
        """The spec as the plain mapping its YAML file holds (round-trips through :func:`parse_spec`)."""
        d = asdict(self)
        d.pop("source")
        ar = d["arithmetic"]
        ar["act_bits"] = list(ar["act_bits"])
        fmts: dict[str, list[int]] = {}
        for fmt, bits in self.arithmetic.weight_formats:
            fmts.setdefault(fmt, []).append(bits)
        ar["weight_formats"] = [{"format": f, "bits": b} for f, b in fmts.items()]
        for key in ("fpga", "accumulators", "vector_unit"):
            if d[key] is None:
                d.pop(key)
        d["dataflow"]["modes"] = list(self.dataflow.modes)
        if self.dram.technology == "custom":
            d["dram"].pop("technology")
            d["dram"].pop("channels")
        return d

    def to_yaml(self) -> str:
        """The spec as YAML text."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------------------
# Validation helpers: every error names the field path.
# ---------------------------------------------------------------------------------------
def _fail(path: str, msg: str) -> UsageError:
    return UsageError(f"{path}: {msg}")


def _section(d: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    p = f"{path}.{key}" if path else key
    if key not in d:
        raise _fail(p, "missing required section")
    v = d[key]
    if not isinstance(v, Mapping):
        raise _fail(p, f"must be a mapping, got {v!r}")
    return v


def _get(d: Mapping[str, Any], key: str, path: str, default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise _fail(f"{path}.{key}" if path else key, "missing required field")
        return default
    return d[key]


def _pos_int(d: Mapping[str, Any], key: str, path: str, default: Any = ...) -> int:
    v = _get(d, key, path, default)
    p = f"{path}.{key}" if path else key
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _fail(p, f"must be a positive integer, got {v!r}")
    return v


def _num(d: Mapping[str, Any], key: str, path: str, *, positive: bool, default: Any = ...) -> float:
    v = _get(d, key, path, default)
    p = f"{path}.{key}" if path else key
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(p, f"must be a number, got {v!r}")
    if positive and v <= 0:
        raise _fail(p, f"must be a positive number, got {v!r}")
    if not positive and v < 0:
        raise _fail(p, f"must be a non-negative number, got {v!r}")
    return float(v)


def _enum(d: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
    v = _get(d, key, path)
    p = f"{path}.{key}" if path else key
    if v not in allowed:
        raise _fail(p, f"must be one of {', '.join(allowed)}; got {v!r}")
    return v


def _check_keys(d: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for k in d:
        if k not in allowed:
            where = f"{path}.{k}" if path else str(k)
            raise _fail(where, f"unknown field; allowed fields: {', '.join(allowed)}")


def parse_spec(data: Any, source: str = "", *, check_device: bool = True) -> AcceleratorSpec:
    """Validate the mapping ``data`` (one parsed YAML file) and build an :class:`AcceleratorSpec`.

    An FPGA spec's array must fit its device (:func:`hwq.hw.fit.check_fit`, from the committed
    per-block synthesis table); ``check_device=False`` skips that (only to synthesise the table).
    """
    if not isinstance(data, Mapping):
        raise UsageError(f"{source or 'spec'}: the file must hold a YAML mapping, got {type(data).__name__}")
    _check_keys(data, "", ("name", "family", "description", "clock_mhz", "array", "arithmetic", "compute",
                           "buffers", "dram", "static_power_mw", "fpga", "batch", "dataflow", "accumulators",
                           "vector_unit"))
    name = _get(data, "name", "")
    if not isinstance(name, str) or not name:
        raise _fail("name", f"must be a non-empty string, got {name!r}")
    family = _enum(data, "family", "", FAMILIES)
    clock = _num(data, "clock_mhz", "", positive=True)

    a = _section(data, "array", "")
    _check_keys(a, "array", ("rows", "cols", "lanes"))
    array = ArraySpec(_pos_int(a, "rows", "array"), _pos_int(a, "cols", "array"), _pos_int(a, "lanes", "array"))

    ar = _section(data, "arithmetic", "")
    _check_keys(ar, "arithmetic", ("mode", "bits_per_cycle", "act_bits", "accumulator_bits", "group_size",
                                   "weight_formats"))
    mode = _enum(ar, "mode", "arithmetic", MODES)
    bpc = _get(ar, "bits_per_cycle", "arithmetic", None)
    if mode == "bit_serial":
        if isinstance(bpc, bool) or not isinstance(bpc, int) or bpc < 2 or bpc % 2:
            raise _fail("arithmetic.bits_per_cycle", f"must be an even integer >= 2 for bit_serial, got {bpc!r}")
    elif bpc is not None:
        raise _fail("arithmetic.bits_per_cycle", f"must be null for bit_parallel, got {bpc!r}")
    acts = _get(ar, "act_bits", "arithmetic")
    if isinstance(acts, int) and not isinstance(acts, bool):
        acts = [acts]
    if not isinstance(acts, list) or not acts:
        raise _fail("arithmetic.act_bits", f"must be a non-empty list of bit widths, got {acts!r}")
    for i, b in enumerate(acts):
        if isinstance(b, bool) or not isinstance(b, int) or b not in FORMAT_BITS["int"]:
            raise _fail(f"arithmetic.act_bits[{i}]", f"must be one of {', '.join(map(str, FORMAT_BITS['int']))} "
                        f"(activations are signed integers), got {b!r}")
    acc = _pos_int(ar, "accumulator_bits", "arithmetic", 32)
    group = _pos_int(ar, "group_size", "arithmetic")
    wf = _get(ar, "weight_formats", "arithmetic")
    if not isinstance(wf, list) or not wf:
        raise _fail("arithmetic.weight_formats", f"must be a non-empty list of {{format, bits}}, got {wf!r}")
    formats: list[tuple[str, int]] = []
    for i, entry in enumerate(wf):
        p = f"arithmetic.weight_formats[{i}]"
        if not isinstance(entry, Mapping):
            raise _fail(p, f"must be a mapping {{format, bits}}, got {entry!r}")
        _check_keys(entry, p, ("format", "bits"))
        fmt = _enum(entry, "format", p, tuple(FORMAT_BITS))
        bl = _get(entry, "bits", p)
        if isinstance(bl, int) and not isinstance(bl, bool):
            bl = [bl]
        if not isinstance(bl, list) or not bl:
            raise _fail(f"{p}.bits", f"must be a non-empty list of bit widths, got {bl!r}")
        for j, b in enumerate(bl):
            if b not in FORMAT_BITS[fmt]:
                raise _fail(f"{p}.bits[{j}]", f"format {fmt!r} has no {b!r}-bit variant; allowed: "
                            f"{', '.join(map(str, FORMAT_BITS[fmt]))}")
            resolve(fmt, b)
            if (fmt, b) not in formats:
                formats.append((fmt, b))
    arith = ArithmeticSpec(mode, bpc, tuple(sorted(set(acts))), tuple(formats), group, acc)

    c = _section(data, "compute", "")
    _check_keys(c, "compute", ("pe_cycle_energy_pj", "reference_act_bits", "reference_weight_bits", "pnr_factor",
                               "energy_scaling"))
    if "energy_scaling" in c:
        scaling = _enum(c, "energy_scaling", "compute", ENERGY_SCALINGS)
    else:
        scaling = "act_bits" if mode == "bit_serial" else "weight_and_act_bits"
    ref_w = None
    if scaling == "weight_and_act_bits":
        ref_w = _pos_int(c, "reference_weight_bits", "compute")
    compute = ComputeEnergySpec(_num(c, "pe_cycle_energy_pj", "compute", positive=True),
                                _pos_int(c, "reference_act_bits", "compute"), ref_w,
                                _num(c, "pnr_factor", "compute", positive=True, default=1.0), scaling)

    b = _section(data, "buffers", "")
    _check_keys(b, "buffers", BUFFER_NAMES)
    buffers: dict[str, BufferSpec] = {}
    for bn in BUFFER_NAMES:
        s = _section(b, bn, "buffers")
        p = f"buffers.{bn}"
        _check_keys(s, p, ("capacity_kib", "access_bits", "read_energy_pj", "write_energy_pj"))
        buffers[bn] = BufferSpec(_num(s, "capacity_kib", p, positive=True), _pos_int(s, "access_bits", p),
                                 _num(s, "read_energy_pj", p, positive=False),
                                 _num(s, "write_energy_pj", p, positive=False))
    # The weight buffer must hold one array tile at the widest supported weight format (double-buffered).
    widest = max(bits for _, bits in formats) + 1
    tile_bits = 2 * array.rows * array.lanes * array.cols * widest
    if buffers["weight"].capacity_bits < tile_bits:
        raise _fail("buffers.weight.capacity_kib", f"must hold two array tiles ({tile_bits / 8192:.1f} KiB at "
                    f"{widest} bits per weight), got {buffers['weight'].capacity_kib}")

    dram = _parse_dram(_section(data, "dram", ""))
    static = _num(data, "static_power_mw", "", positive=False)
    batch = _pos_int(data, "batch", "", 1)
    dataflow, accumulators = _parse_dataflow(data)
    vector = None
    if data.get("vector_unit") is not None:
        v = _section(data, "vector_unit", "")
        _check_keys(v, "vector_unit", ("lanes", "op_energy_pj", "reference_act_bits"))
        vector = VectorUnitSpec(_pos_int(v, "lanes", "vector_unit"),
                                _num(v, "op_energy_pj", "vector_unit", positive=False),
                                _pos_int(v, "reference_act_bits", "vector_unit"))

    fpga = None
    if family == "fpga":
        fpga = _parse_fpga(_section(data, "fpga", ""))
    elif "fpga" in data and data["fpga"] is not None:
        raise _fail("fpga", "only allowed when family is fpga")

    desc = _get(data, "description", "", "")
    spec = AcceleratorSpec(name, family, clock, array, arith, compute, buffers, dram, static,
                           str(desc), fpga, batch, dataflow, accumulators, vector, source)
    if fpga is not None and check_device:
        from hwq.hw.fit import check_fit

        check_fit(spec)
    return spec


def _nonneg_int(d: Mapping[str, Any], key: str, path: str, default: Any = ...) -> int:
    v = _get(d, key, path, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _fail(f"{path}.{key}", f"must be a non-negative integer, got {v!r}")
    return v


def _parse_fpga(f: Mapping[str, Any]) -> FpgaSpec:
    """``fpga``: the device's resources (see the module docstring); capacity checks: hwq.hw.fit."""
    _check_keys(f, "fpga", ("device", "synth_target", "package", "luts", "ffs", "dsps", "macs_per_dsp",
                            "bram_blocks", "bram_block_kbits", "bram_36k", "uram", "spram"))
    dev = _get(f, "device", "fpga")
    if not isinstance(dev, str) or not dev:
        raise _fail("fpga.device", f"must be a non-empty string, got {dev!r}")
    target = _get(f, "synth_target", "fpga", default_synth_target(dev))
    if target not in SYNTH_TARGETS:
        raise _fail("fpga.synth_target", f"must be one of {', '.join(SYNTH_TARGETS)}; got {target!r}")
    package = _get(f, "package", "fpga", "")
    if not isinstance(package, str):
        raise _fail("fpga.package", f"must be a string, got {package!r}")
    if "bram_36k" in f and ("bram_blocks" in f or "bram_block_kbits" in f):
        raise _fail("fpga.bram_36k", "give either bram_36k or bram_blocks (+ bram_block_kbits), not both")
    if "bram_36k" in f:
        blocks, kbits = _nonneg_int(f, "bram_36k", "fpga"), 36
    else:
        blocks, kbits = _nonneg_int(f, "bram_blocks", "fpga"), _pos_int(f, "bram_block_kbits", "fpga", 36)
    return FpgaSpec(dev, _pos_int(f, "luts", "fpga"), _pos_int(f, "ffs", "fpga"), _nonneg_int(f, "dsps", "fpga", 0),
                    blocks, _nonneg_int(f, "uram", "fpga", 0), _pos_int(f, "macs_per_dsp", "fpga", 1), kbits,
                    _nonneg_int(f, "spram", "fpga", 0), target, package)


def _parse_dram(d: Mapping[str, Any]) -> DramSpec:
    """``dram``: a technology from :data:`hwq.dram.TECHNOLOGIES` (with optional overrides) or both figures."""
    from hwq.dram import TECHNOLOGIES

    _check_keys(d, "dram", ("technology", "channels", "bandwidth_gb_per_s", "energy_pj_per_bit"))
    tech = _get(d, "technology", "dram", None)
    channels = _pos_int(d, "channels", "dram", 1)
    if tech is None:
        if "channels" in d:
            raise _fail("dram.channels", "only allowed with dram.technology")
        return DramSpec(_num(d, "bandwidth_gb_per_s", "dram", positive=True),
                        _num(d, "energy_pj_per_bit", "dram", positive=False))
    if not isinstance(tech, str) or tech.lower() not in TECHNOLOGIES:
        raise _fail("dram.technology", f"unknown DRAM technology {tech!r}; known: {', '.join(TECHNOLOGIES)}")
    row = TECHNOLOGIES[tech.lower()]
    bw = _num(d, "bandwidth_gb_per_s", "dram", positive=True, default=row.bandwidth_gb_per_s * channels)
    e = _num(d, "energy_pj_per_bit", "dram", positive=False, default=row.energy_pj_per_bit)
    return DramSpec(bw, e, tech.lower(), channels)


def _parse_dataflow(data: Mapping[str, Any]) -> tuple[DataflowSpec, AccumulatorSpec | None]:
    """``dataflow`` and ``accumulators`` sections (both optional; see the module docstring)."""
    dataflow = DataflowSpec()
    if data.get("dataflow") is not None:
        df = _section(data, "dataflow", "")
        _check_keys(df, "dataflow", ("modes", "partial_sums"))
        modes = _get(df, "modes", "dataflow", list(DataflowSpec.modes))
        if isinstance(modes, str):
            modes = [modes]
        if not isinstance(modes, list) or not modes:
            raise _fail("dataflow.modes", f"must be a non-empty list of {', '.join(DATAFLOWS)}; got {modes!r}")
        for i, mo in enumerate(modes):
            if mo not in DATAFLOWS:
                raise _fail(f"dataflow.modes[{i}]", f"must be one of {', '.join(DATAFLOWS)}; got {mo!r}")
        psums = df.get("partial_sums", DataflowSpec.partial_sums)
        if psums not in PARTIAL_SUMS:
            raise _fail("dataflow.partial_sums", f"must be one of {', '.join(PARTIAL_SUMS)}; got {psums!r}")
        dataflow = DataflowSpec(tuple(dict.fromkeys(modes)), psums)
    accumulators = None
    if data.get("accumulators") is not None:
        a = _section(data, "accumulators", "")
        p = "accumulators"
        _check_keys(a, p, ("depth", "access_bits", "read_energy_pj", "write_energy_pj"))
        accumulators = AccumulatorSpec(_pos_int(a, "depth", p), _pos_int(a, "access_bits", p),
                                       _num(a, "read_energy_pj", p, positive=False),
                                       _num(a, "write_energy_pj", p, positive=False))
    if "accumulate_in_array" in dataflow.modes and accumulators is None:
        raise _fail("accumulators", "missing required section (dataflow.modes has accumulate_in_array)")
    return dataflow, accumulators


def load_spec(name_or_path: str | Path | None = None) -> AcceleratorSpec:
    """Load preset ``name_or_path`` (a name in :data:`PRESETS`) or a YAML file path; None: the default."""
    import yaml

    target = DEFAULT_PRESET if name_or_path is None else str(name_or_path)
    path = Path(target)
    if target in PRESETS:
        path = PRESET_DIR / f"{target}.yaml"
    elif not (path.suffix in (".yaml", ".yml") and path.is_file()):
        raise UsageError(f"unknown accelerator {target!r}; use a preset ({', '.join(PRESETS)}) "
                         f"or the path of a .yaml spec file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}:{where} is not valid YAML ({getattr(err, 'problem', err)})") from None
    try:
        return parse_spec(data, str(path))
    except UsageError as err:
        raise UsageError(f"{path.name}: {err}") from None
