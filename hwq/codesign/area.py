"""Hardware cost of a design point: ASIC area from published figures.

ASIC family (28 nm), area in µm²::

    area = PEs * pe_area_um2 + sum over buffers (capacity_kib * SRAM_UM2_PER_KIB)
           + accumulator bits (cols * depth * access_bits) / 8192 * SRAM_UM2_PER_KIB

* ``pe_area_um2``: the BitMoD PE (4-lane bit-serial dot product consuming 2 weight bits per
  cycle) is 1507.7 µm² at 28 nm, the FP16 PE 1968.7 µm² (BitMoD, HPCA 2025; DESIGN.md
  section 1). A bit-serial PE is scaled linearly in ``lanes / 4`` and in
  ``bits_per_cycle / 2`` (each extra 2-bit step per cycle replicates the shift-add lane);
  a bit-parallel PE uses the FP16 figure scaled by ``lanes / 4`` (an upper bound for INT8).
  Linear scaling is our assumption, not a published figure.
* SRAM: 6T bit cell of TSMC 28 nm HP, 0.16 µm², as measured by Chipworks ("A review of
  TSMC 28 nm process technology", 2012), divided by an array efficiency of 0.7 (sense
  amplifiers, decoders: 60-80 % is typical; 0.7 is our assumption) -> 1872.5 µm² per KiB.
* Accumulator register files (``accumulate_in_array`` dataflow): the bits they hold at the
  SRAM density (a lower bound: a register file is less dense; our assumption). Counted in
  ``sram_um2``.

The FPGA family's cost comes from Yosys synthesis instead (:mod:`hwq.codesign.fpga_cost`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: BitMoD PE area at 28 nm, µm² (4 lanes, 2 weight bits per cycle).
BITMOD_PE_AREA_UM2 = 1507.7
#: FP16 PE area at 28 nm, µm² (4 lanes, bit-parallel), BitMoD's baseline.
FP16_PE_AREA_UM2 = 1968.7
#: Lanes and bits per cycle of the published PEs.
REFERENCE_LANES = 4
REFERENCE_BITS_PER_CYCLE = 2
#: TSMC 28 nm HP 6T SRAM bit cell, µm² (Chipworks 2012).
SRAM_BITCELL_UM2 = 0.16
#: Fraction of an SRAM macro that is bit cells (assumption; 0.6-0.8 is typical).
SRAM_ARRAY_EFFICIENCY = 0.7
#: SRAM macro area per KiB, µm².
SRAM_UM2_PER_KIB = 1024 * 8 * SRAM_BITCELL_UM2 / SRAM_ARRAY_EFFICIENCY


@dataclass(frozen=True)
class AsicArea:
    """Area of one accelerator, µm²: the PE array and the on-chip buffers."""

    pe_um2: float
    pe_array_um2: float
    sram_um2: float

    @property
    def total_um2(self) -> float:
        """PE array plus buffers, µm²."""
        return self.pe_array_um2 + self.sram_um2

    @property
    def total_mm2(self) -> float:
        """PE array plus buffers, mm²."""
        return self.total_um2 * 1e-6


def pe_area_um2(mode: str, lanes: int, bits_per_cycle: int | None) -> float:
    """Area of one PE at 28 nm, µm² (scaling rule in the module docstring)."""
    if mode == "bit_serial":
        return BITMOD_PE_AREA_UM2 * (lanes / REFERENCE_LANES) * ((bits_per_cycle or 2) / REFERENCE_BITS_PER_CYCLE)
    return FP16_PE_AREA_UM2 * (lanes / REFERENCE_LANES)


def asic_area(spec) -> AsicArea:
    """Area estimate of ``spec`` (an :class:`hwq.spec.AcceleratorSpec` of family asic)."""
    pe = pe_area_um2(spec.arithmetic.mode, spec.array.lanes, spec.arithmetic.bits_per_cycle)
    sram = sum(b.capacity_kib for b in spec.buffers.values()) * SRAM_UM2_PER_KIB
    acc = getattr(spec, "accumulators", None)
    if acc is not None and "accumulate_in_array" in getattr(spec.dataflow, "modes", ()):
        sram += spec.array.cols * acc.depth * acc.access_bits / (1024 * 8) * SRAM_UM2_PER_KIB
    return AsicArea(pe, pe * spec.array.rows * spec.array.cols, sram)
