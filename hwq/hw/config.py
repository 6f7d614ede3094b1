"""Array parameters, from plain numbers or an accelerator spec (:func:`array_config_from_spec`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from hwq.datatypes import DATATYPES, GROUP_META_BITS, Mixture, cycles_per_weight, resolve
from hwq.hw.common import clog2, signed_bits
from hwq.hw.decoder import decoder_geometry

#: Weight format families the array runs (asymmetric INT needs a zero-point path, MX a shared exponent).
ARRAY_FORMATS = ("int", "fp", "bitmod", "ant")


@dataclass(frozen=True)
class ArrayConfig:
    """Weight-stationary PE array parameters.

    Attributes:
        rows, cols: PE grid; lanes: dot-product width per PE (weights per PE per step).
        mode: ``"bit_serial"`` or ``"bit_parallel"``; bits_per_cycle: serial radix (None if parallel).
        act_bits: signed activation width (bits); formats: ``(fmt, bits)`` weight formats,
            selected at run time by the ``fmt`` config field (index into this tuple).
        group_size: quantization group (weights); acc_bits: output accumulator width (bits, wraps).
        x_depth, w_depth, out_depth: on-chip buffer depths (words; see :mod:`hwq.hw.array`). The
            accumulator memory (``o_mem``, ``out_depth`` rows of ``cols`` accumulators) holds the
            partial sums of one M tile, so a run's ``m_tile`` (``m`` when it has one M tile) is at
            most ``out_depth``; the activation buffer holds ``k_tiles * M`` words of the whole layer.
        psum_elide: partial sums ``elide_first_last`` (the first K tile writes ``o_mem`` without
            reading it, the last K tile sends its result out without writing it back) instead of
            read-modify-write on every K tile (:func:`hwq.timing.psum_row_accesses`).
    """

    rows: int
    cols: int
    lanes: int
    mode: str = "bit_serial"
    bits_per_cycle: int | None = 2
    act_bits: int = 8
    formats: tuple[tuple[str, int], ...] = (("bitmod", 4),)
    group_size: int = 128
    acc_bits: int = 32
    x_depth: int = 64
    w_depth: int = 64
    out_depth: int = 32
    psum_elide: bool = False

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "lanes", "x_depth", "w_depth", "out_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.mode not in ("bit_serial", "bit_parallel"):
            raise ValueError(f"mode must be bit_serial or bit_parallel, got {self.mode!r}")
        if self.mode == "bit_serial" and (self.bits_per_cycle is None or self.bits_per_cycle < 2
                                          or self.bits_per_cycle % 2):
            raise ValueError(f"bit_serial needs an even bits_per_cycle >= 2, got {self.bits_per_cycle}")
        if not self.formats:
            raise ValueError("formats must name at least one (fmt, bits)")
        for fmt, bits in self.formats:
            if fmt not in ARRAY_FORMATS:
                raise ValueError(f"weight format {fmt!r} is not supported by the PE array; "
                                 f"choose from {', '.join(ARRAY_FORMATS)}")
            resolve(fmt, bits)
        if self.group_size % self.lanes:
            raise ValueError(f"group_size {self.group_size} must be a multiple of lanes {self.lanes}")
        kt = self.rows * self.lanes
        if self.group_size % kt and kt % self.group_size:
            raise ValueError(f"group_size {self.group_size} and the tile depth rows*lanes={kt} must divide "
                             "one another")
        if self.act_bits < 2:
            raise ValueError(f"act_bits must be >= 2, got {self.act_bits}")

    # ---- weight formats -------------------------------------------------------------------
    @cached_property
    def members(self) -> tuple[str, ...]:
        """Every member datatype the decoder knows, formats concatenated in order."""
        out: list[str] = []
        for fmt, bits in self.formats:
            entry = resolve(fmt, bits)
            out += list(entry.members) if isinstance(entry, Mixture) else [entry.name]
        return tuple(out)

    @cached_property
    def fmt_base(self) -> tuple[int, ...]:
        """Index of each format's first member in :attr:`members`."""
        out, base = [], 0
        for fmt, bits in self.formats:
            entry = resolve(fmt, bits)
            out.append(base)
            base += len(entry.members) if isinstance(entry, Mixture) else 1
        return tuple(out)

    def term_slots(self, fmt_index: int) -> int:
        """Term slots of format ``fmt_index`` (drives its cycles per weight)."""
        return resolve(*self.formats[fmt_index]).term_slots

    def interval(self, fmt_index: int) -> int:
        """Cycles per activation vector for format ``fmt_index`` (``cycles_per_weight``)."""
        return cycles_per_weight(self.term_slots(fmt_index), self.bpc)

    @property
    def bpc(self) -> int | None:
        """Bits per cycle (None for bit-parallel)."""
        return self.bits_per_cycle if self.mode == "bit_serial" else None

    @cached_property
    def selector_bits(self) -> int:
        """Width of the per-group member selector field (bits)."""
        return clog2(max(len(getattr(resolve(f, b), "members", (0,))) for f, b in self.formats))

    @cached_property
    def scale_bits(self) -> int:
        """Width of the per-group unsigned integer scale (bits)."""
        return max(getattr(resolve(f, b), "scale_bits", GROUP_META_BITS) for f, b in self.formats)

    @cached_property
    def geometry(self) -> dict[str, int]:
        """Decoder widths (:func:`hwq.hw.decoder.decoder_geometry`)."""
        return decoder_geometry(self.members)

    @property
    def code_bits(self) -> int:
        return self.geometry["code_bits"]

    # ---- tiling -----------------------------------------------------------------------------
    @property
    def tile_k(self) -> int:
        """Reduction elements per tile: rows * lanes."""
        return self.rows * self.lanes

    @property
    def rows_per_seg(self) -> int:
        """PE rows whose weights share one group (and one scale) within a tile."""
        return min(self.rows, self.group_size // self.lanes)

    @property
    def segs(self) -> int:
        """Groups (dequantizer units) per column within one tile."""
        return self.rows // self.rows_per_seg

    @property
    def dq_digits(self) -> int:
        """Scale bits the array's dequantizers consume per cycle (fits the shortest interval)."""
        shortest = min(self.interval(i) for i in range(len(self.formats)))
        return -(-self.scale_bits // shortest)

    # ---- widths -----------------------------------------------------------------------------
    @cached_property
    def max_abs_value(self) -> int:
        return max(abs(v) for n in self.members for v in DATATYPES[n].decode)

    @property
    def pe_bits(self) -> int:
        """PE accumulator width (bits): one lanes-wide dot product never overflows it."""
        b = self.lanes * (1 << (self.act_bits - 1)) * self.max_abs_value
        return signed_bits(-b, b)

    @property
    def seg_bits(self) -> int:
        """Width of one group segment's column sum (bits)."""
        b = self.rows_per_seg * self.lanes * (1 << (self.act_bits - 1)) * self.max_abs_value
        return signed_bits(-b, b)

    @property
    def w_word_layout_fields(self) -> dict[str, int]:
        return {"codes": self.lanes * self.code_bits, "sel": self.selector_bits, "scale": self.scale_bits}


#: Loop nests the array runs (``spec.dataflow.modes``; :mod:`hwq.timing`).
DATAFLOWS = ("output_buffer", "accumulate_in_array")


def spec_dataflow(spec, dataflow: str | None = None) -> str:
    """The dataflow a run uses: ``dataflow`` if given (must be one of the spec's modes), else the
    spec's first mode (``output_buffer`` for a spec without a ``dataflow`` section)."""
    modes = tuple(getattr(getattr(spec, "dataflow", None), "modes", ("output_buffer",)))
    if dataflow is None:
        return modes[0]
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow {dataflow!r} is not one of {', '.join(DATAFLOWS)}")
    if dataflow not in modes:
        raise ValueError(f"spec {spec.name!r} does not run the {dataflow} dataflow (its dataflow.modes: "
                         f"{', '.join(modes)})")
    return dataflow


def spec_psum_elide(spec) -> bool:
    """``spec.dataflow.partial_sums == "elide_first_last"`` (False for a spec without the field)."""
    return getattr(getattr(spec, "dataflow", None), "partial_sums", "read_modify_write") == "elide_first_last"


def array_config_from_spec(spec, *, dataflow: str | None = None, **overrides) -> ArrayConfig:
    """The :class:`ArrayConfig` of an :class:`hwq.spec.AcceleratorSpec` (formats the array cannot run are dropped).

    ``psum_elide`` comes from ``spec.dataflow.partial_sums``. In the ``accumulate_in_array``
    dataflow (``dataflow``, default the spec's first mode) ``out_depth`` is
    ``spec.accumulators.depth`` (the per-column psum register files); ``overrides`` win.
    """
    ar = spec.arithmetic
    formats = tuple((f, b) for f, b in ar.weight_formats if f in ARRAY_FORMATS)
    if not formats:
        raise ValueError(f"spec {spec.name!r} has no weight format the PE array runs ({', '.join(ARRAY_FORMATS)})")
    kw = dict(rows=spec.array.rows, cols=spec.array.cols, lanes=spec.array.lanes, mode=ar.mode,
              bits_per_cycle=ar.bits_per_cycle, act_bits=max(ar.act_bits), formats=formats,
              group_size=ar.group_size, acc_bits=getattr(ar, "accumulator_bits", 32),
              psum_elide=spec_psum_elide(spec))
    if spec_dataflow(spec, dataflow) == "accumulate_in_array":
        acc = getattr(spec, "accumulators", None)
        if acc is None:
            raise ValueError(f"spec {spec.name!r} runs accumulate_in_array but has no accumulators section")
        kw["out_depth"] = int(acc.depth)
    kw.update(overrides)
    return ArrayConfig(**kw)
