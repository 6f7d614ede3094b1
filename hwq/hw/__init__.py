"""Amaranth hardware generators: weight decoder, bit-serial and bit-parallel PEs, the bit-serial
dequantizer, the weight-stationary PE array, the FPGA fixed-point datapath, Verilog emission
(:mod:`hwq.hw.generate`) and Yosys synthesis (:mod:`hwq.hw.synth`).

Every grid and term decomposition comes from :mod:`hwq.datatypes`; every cycle count the
array produces is the one :mod:`hwq.timing` predicts.
"""
