"""cocotb testbench: standalone PE (bit-serial BitSerialPE or bit-parallel BitParallelPE).

Stimulus (``HWQ_STIM``, written by tests/test_hw_cosim.py from hwq.golden): ``psum_bits`` and
``groups``: each a list of packed input ``beats``, the golden ``expected`` group psum and
``cycles`` per beat (``hwq.datatypes.cycles_per_weight``). Checks every psum and every
beat's cycle count; the first mismatch reports its group index, inputs, expected and got.
"""

import cocotb

from tb_common import drive_and_read, load_stimulus, start_clock_and_reset, to_signed


@cocotb.test()
async def pe_group_psums_exact(dut):
    """Every group's partial sum equals the golden model; every beat takes its datatype's cycles."""
    stim = load_stimulus("pe")
    pre = stim.get("prefix", "")
    await start_clock_and_reset(dut)
    width = stim["psum_bits"]
    for gi, grp in enumerate(stim["groups"]):
        got = None
        for bi, beat in enumerate(grp["beats"]):
            cycles = 0
            while True:
                cycles += 1
                ready, valid, payload = await drive_and_read(
                    dut, {"inp__payload": int(beat), "inp__valid": 1, "out__ready": 1},
                    "inp__ready", "out__valid", "out__payload", prefix=pre)
                if valid:
                    got = to_signed(payload, width)
                if ready:
                    break
                assert cycles <= 64, f"group {gi} beat {bi}: PE never accepted the beat"
            assert cycles == grp["cycles"], (
                f"group {gi} ({grp['name']}) beat {bi}: expected {grp['cycles']} cycles, got {cycles}")
        # The psum is registered on the last beat's edge: visible one cycle later.
        valid, payload = await drive_and_read(dut, {"inp__valid": 0, "out__ready": 1}, "out__valid", "out__payload", prefix=pre)
        assert valid, f"group {gi}: no output after the last beat"
        got = to_signed(payload, width)
        assert got == grp["expected"], (
            f"first mismatch: group {gi} ({grp['name']}), inputs {grp['inputs']}: expected {grp['expected']}, got {got}")
