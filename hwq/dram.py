"""Off-chip DRAM technologies: energy per bit moved and bandwidth per channel, with their sources.

A spec names one with ``dram.technology`` (``hwq.spec``); ``dram.channels`` multiplies the
bandwidth, and ``dram.energy_pj_per_bit`` / ``dram.bandwidth_gb_per_s`` override a figure (the
preset then cites its own source). Bandwidths are peak data rates (1 GB = 1e9 bytes).

Sources
-------
[BM]  BitMoD (Chen et al., HPCA 2025) simulator, github.com/abdelfattah-lab/BitMoD-HPCA-25,
      accelerator.py: DDR DRAM, 1200 pJ per 64-bit access (= 18.75 pJ/bit).
[AC]  Accelergy (Wu et al., ICCAD 2019) reference table, as quoted in DESIGN.md section 3 and in
      its CACTI plug-in (``cacti_wrapper.py``: ``LPDDR4: 8 pJ/bit``): LPDDR4 64-bit read 512 pJ.
[OC]  O'Connor et al., "Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems",
      MICRO 2017, section 1: "The energy to access a bit in HBM2 is approximately 3.97 pJ/bit";
      HBM2: 8 channels x 128 bit x 2 Gb/s per pin = 256 GB/s per stack.
[JD]  JEDEC data rates: DDR4-3200 on a 64-bit channel = 25.6 GB/s; LPDDR4-3200, LPDDR4X-4266 and
      LPDDR5-6400 on a 32-bit channel (two x16 dies) = 12.8, 17.06 and 25.6 GB/s.
[SS]  Samsung's LPDDR5 announcement (2018): power consumption reduced by up to 30 % against
      LPDDR4X. No absolute LPDDR5 or LPDDR4X pJ/bit figure was found in a citable source, so
      LPDDR4X takes LPDDR4's [AC] figure (an upper bound: its lower I/O voltage is not credited)
      and LPDDR5 takes 0.7 x that (derived from [SS]).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DramTechnology:
    """One DRAM technology: ``energy_pj_per_bit`` (access incl. I/O) and ``bandwidth_gb_per_s`` per channel."""

    name: str
    energy_pj_per_bit: float
    bandwidth_gb_per_s: float
    channel: str
    source: str


#: Every technology a spec may name, keyed by ``dram.technology``.
TECHNOLOGIES: dict[str, DramTechnology] = {t.name: t for t in (
    DramTechnology("ddr4", 1200 / 64, 25.6, "64-bit DDR4-3200 channel", "[BM] energy, [JD] bandwidth"),
    DramTechnology("lpddr4", 512 / 64, 12.8, "32-bit LPDDR4-3200 channel", "[AC] energy, [JD] bandwidth"),
    DramTechnology("lpddr4x", 512 / 64, 17.06, "32-bit LPDDR4X-4266 channel",
                   "[AC] LPDDR4 energy (upper bound), [JD] bandwidth"),
    DramTechnology("lpddr5", 0.7 * 512 / 64, 25.6, "32-bit LPDDR5-6400 channel",
                   "0.7 x [AC] from [SS] (derived), [JD] bandwidth"),
    DramTechnology("hbm2", 3.97, 256.0, "HBM2 stack (8 x 128-bit channels)", "[OC] energy and bandwidth"),
)}
