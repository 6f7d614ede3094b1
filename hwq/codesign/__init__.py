"""Co-design: sweep accelerator variants and precision plans together (``hwq codesign``).

* :mod:`hwq.codesign.space`  -- a declared design space (YAML), validated, expanded to points.
* :mod:`hwq.codesign.area`   -- hardware cost of a point: ASIC area (µm²) or FPGA resources.
* :mod:`hwq.codesign.runner` -- resumable parallel map over points (JSON lines on disk).
* :mod:`hwq.codesign.sweep`  -- per point: cost table + precision ILP under the budget.
* :mod:`hwq.codesign.pareto` -- Pareto set and the chosen design.
"""
