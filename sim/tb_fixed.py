"""cocotb testbench: FPGA fixed-point datapath (hwq.hw.fixed_datapath.FixedDatapath).

Stimulus (``HWQ_STIM``): ``out_bits``, ``out_signed`` and ``channels``: packed beats plus the
per-channel ports (``bn_scale``, ``bn_shift``, ``residual``) and the ``expected`` output code
(the quantizer's ap_fixed cast of the exact result). Output ``ready`` toggles every other cycle.
"""

import cocotb

from tb_common import drive_and_read, load_stimulus, start_clock_and_reset, to_signed


@cocotb.test()
async def fixed_datapath_exact(dut):
    """Every channel's output code equals the expected ap_fixed code."""
    stim = load_stimulus("fixed")
    pre = stim.get("prefix", "")
    await start_clock_and_reset(dut)
    has_res = stim["has_residual"]
    got = []
    expected = [ch["expected"] for ch in stim["channels"]]
    pending = [(ch, bi) for ch in stim["channels"] for bi in range(len(ch["beats"]))]
    cycle = 0
    while len(got) < len(expected):
        cycle += 1
        assert cycle < 20 * (len(pending) + len(expected)) + 100, "datapath stopped producing outputs"
        drive = {"out__ready": cycle % 2, "inp__valid": 0}
        if pending:
            ch, bi = pending[0]
            drive.update({"inp__valid": 1, "inp__payload": int(ch["beats"][bi]), "bn_scale": int(ch["bn_scale_port"]),
                          "bn_shift": int(ch["bn_shift_port"])})
            if has_res:
                drive["residual"] = int(ch["residual_port"])
        in_ready, out_valid, out_ready, payload = await drive_and_read(
            dut, drive, "inp__ready", "out__valid", "out__ready", "out__payload", prefix=pre)
        if pending and in_ready:
            pending.pop(0)
        if out_valid and out_ready:
            got.append(to_signed(payload, stim["out_bits"]) if stim["out_signed"] else payload)
    for i, (g, e) in enumerate(zip(got, expected)):
        ch = stim["channels"][i]
        assert g == e, (f"first mismatch: channel {i} x={ch['x']} w={ch['w']} bn_scale={ch['bn_scale']} "
                        f"bn_shift={ch['bn_shift']} residual={ch['residual']}: expected {e}, got {g}")
