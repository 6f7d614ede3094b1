"""cocotb testbench: bit-serial dequantizer (hwq.hw.dequant.BitSerialDequant).

Stimulus (``HWQ_STIM``): ``acc_bits``, ``steps`` (cycles per group) and ``sequences``: packed
beats (psum, scale, last) and the golden ``expected`` sum of psum * scale. Checks every sum,
and that each group occupies the unit for 1 + ``steps`` cycles; output ``ready`` toggles.
"""

import cocotb

from tb_common import drive_and_read, load_stimulus, start_clock_and_reset, to_signed


@cocotb.test()
async def dequant_sums_exact(dut):
    """sum psum*scale over each sequence equals hwq.golden.dequant_accumulate."""
    stim = load_stimulus("dequant")
    pre = stim.get("prefix", "")
    await start_clock_and_reset(dut)
    width = stim["acc_bits"]
    for si, seq in enumerate(stim["sequences"]):
        for beat in seq["beats"]:
            waited = 0
            while True:
                (ready,) = await drive_and_read(dut, {"inp__payload": int(beat), "inp__valid": 1, "out__ready": 0},
                                                "inp__ready", prefix=pre)
                if ready:
                    break
                waited += 1
                assert waited <= 2 + stim["steps"], f"sequence {si}: unit stayed busy for {waited} cycles"
        got, hold = None, 0
        while got is None:
            # Hold ready low for one cycle after valid rises: the result must stay put.
            valid, payload = await drive_and_read(dut, {"inp__valid": 0, "out__ready": int(hold > 0)},
                                                  "out__valid", "out__payload", prefix=pre)
            if valid:
                if hold > 0:
                    got = to_signed(payload, width)
                hold += 1
        assert got == seq["expected"], (
            f"first mismatch: sequence {si} psums={seq['psums']} scales={seq['scales']}: "
            f"expected {seq['expected']}, got {got}")
