"""Cell-voltage statistics the limit stages share, with the reference's plausibility rule.

A cell reading that is not a number, not above 0 V or above twice ``max_cell_voltage`` is
implausible (a loose sense wire, a BMS glitch) and ignored, as the reference driver does.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.define(slots=True)
class CellStats:
    count: int
    total: float  # sum of the plausible cells (the CVL logic uses this, not the BMS pack voltage)
    lowest: float
    highest: float
    cells: Sequence[float]  # the plausible cells


def cell_stats(cells: Sequence[float] | None, ceiling: float) -> CellStats | None:
    """Statistics over the plausible cells, or None when there is none."""
    if not cells:
        return None
    try:
        total = sum(cells)
        lo = min(cells)
        hi = max(cells)
        # total != total catches a NaN hidden in the middle of the list (min/max skip it)
        if total == total and lo > 0.0 and hi <= ceiling:
            return CellStats(len(cells), total, lo, hi, cells)
    except TypeError:
        pass
    good = [c for c in cells if isinstance(c, int | float) and 0.0 < c <= ceiling]
    if not good:
        return None
    return CellStats(len(good), sum(good), min(good), max(good), good)


def finite_or_none(value: float | None) -> float | None:
    """The value when it is a finite number, else None (NaN/inf from a BMS are "unknown")."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return value
