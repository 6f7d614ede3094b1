"""cocotb testbench: the PE array (hwq.hw.array.PEArray) running whole tiled layers.

Stimulus (``HWQ_STIM``, from :func:`hwq.hw.array_sim.run_array_images`): ``runs``, each a
layer image (buffer words and run config, :class:`hwq.hw.array_driver.LayerImage`) plus an
optional ``ready_prob`` (output back-pressure, seeded) and the ``cfg`` port value
(:func:`hwq.hw.array_driver.cfg_word`). For every run the testbench fills the buffers through
``w_in``/``x_in``, pulses ``start``, collects every ``out`` word, measures the cycles from the
start edge to the edge that transfers the last output, and reads the run's ``psum_reads`` /
``psum_writes`` counters once ``busy`` falls. It writes
``{"runs": [{"out_words", "cycles", "psum_reads", "psum_writes"}]}`` to ``HWQ_RESULT``; the
Python side unpacks and compares with the golden model and hwq.timing.
"""

import random

import cocotb

from tb_common import drive_and_read, load_stimulus, start_clock_and_reset, write_result


async def _fill(dut, port: str, words) -> None:
    for w in words:
        while True:
            (ready,) = await drive_and_read(dut, {f"{port}__payload": int(w), f"{port}__valid": 1}, f"{port}__ready")
            if ready:
                break
    await drive_and_read(dut, {f"{port}__valid": 0})


@cocotb.test()
async def array_runs_layers(dut):
    """Run every layer image; record outputs and measured cycles."""
    stim = load_stimulus()
    await start_clock_and_reset(dut)
    dut.start.value = 0
    dut.out__ready.value = 0
    dut.x_in__valid.value = 0
    dut.w_in__valid.value = 0
    results = []
    for ri, run in enumerate(stim["runs"]):
        img = run["image"]
        rng = random.Random(run.get("seed", ri))
        prob = run.get("ready_prob")
        await _fill(dut, "w_in", img["w_words"])
        await _fill(dut, "x_in", img["x_words"])
        if "cfg" in run:
            cfg = int(run["cfg"])
        else:  # field offsets only (one M tile)
            sh = run["cfg_shift"]
            cfg = (img["fmt"] << sh["fmt"]) | (img["n_tiles"] << sh["n_tiles"]) | \
                  (img["k_tiles"] << sh["k_tiles"]) | (img["m"] << sh["m"])
        ready = 1 if prob is None else int(rng.random() < prob)
        await drive_and_read(dut, {"cfg": cfg, "start": 1, "out__ready": ready})  # the start edge follows
        edge, words, last = 0, [], None
        limit = run["cycle_limit"]
        while True:
            drive = {"start": 0} if edge == 0 else {}
            drive["out__ready"] = 1 if prob is None else int(rng.random() < prob)
            valid, rdy, payload, busy, reads, writes = await drive_and_read(
                dut, drive, "out__valid", "out__ready", "out__payload", "busy", "psum_reads", "psum_writes")
            edge += 1
            if valid and rdy:
                words.append(str(payload))
                last = edge
            if not busy and edge > 1:
                break
            assert edge < limit, f"run {ri}: array still busy after {limit} cycles"
        results.append({"out_words": words, "cycles": last, "psum_reads": reads, "psum_writes": writes})
    write_result({"runs": results})
