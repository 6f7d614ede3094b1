"""Co-design: sweep accelerator variants and precision plans together (``hwq codesign``).

* :mod:`hwq.codesign.space`     -- a declared design space (YAML), validated, expanded to specs.
* :mod:`hwq.codesign.area`      -- ASIC area of a point from published per-PE and SRAM figures (µm²).
* :mod:`hwq.codesign.fpga_cost` -- FPGA LUT/FF/DSP/BRAM of a point from Yosys, cached per point.
* :mod:`hwq.codesign.runner`    -- resumable parallel map over points (JSON lines on disk).
* :mod:`hwq.codesign.executors` -- where tasks run: this process, a local process pool, or Ray.
* :mod:`hwq.codesign.pipeline`  -- the staged sweep (ILP, synthesis of Pareto candidates, co-simulation).
* :mod:`hwq.codesign.stages`    -- the worker side of each stage.
* :mod:`hwq.codesign.sampling`  -- which points of a large space to evaluate (random, Latin hypercube, TPE).
* :mod:`hwq.codesign.scaling`   -- measured points/s per executor and worker count, and the projection.
* :mod:`hwq.codesign.sweep`     -- per point: cost table + precision ILP under the budget.
* :mod:`hwq.codesign.pareto`    -- Pareto set and the rule that picks the chosen design.
* :mod:`hwq.codesign.driver`    -- the whole pipeline (sensitivity once, sweep, presets, choice).
* :mod:`hwq.codesign.artifacts` -- the chosen design's spec, plan, Verilog, synthesis, co-simulation.
* :mod:`hwq.codesign.plot`      -- the Pareto plot.
"""
