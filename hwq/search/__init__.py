"""Precision search: per-layer sensitivity, the HAWQ-V3 ILP, baselines and reports (``hwq explore``).

Modules: ``units`` (budget text -> SI floats), ``problem`` (the allocation problem all solvers
share), ``sensitivity`` (Hutchinson Hessian trace / KL, cached), ``ilp`` (PuLP: CBC or HiGHS),
``greedy`` (baseline allocator, uniform plans), ``pareto`` (budget sweep), ``plan`` (plan.json
schema), ``report`` (report directory), ``explore`` (the whole pipeline).
"""
