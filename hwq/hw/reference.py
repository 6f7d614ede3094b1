"""Expected values for the hardware testbenches, taken from the golden model.

Testbenches never re-implement the arithmetic: they call these names, which are
:mod:`hwq.golden` (the project's integer reference).
"""

from __future__ import annotations

from hwq.golden import decode_codes, dequant_accumulate, group_psums  # noqa: F401
