"""Cell-voltage statistics the limit stages share, with the reference's plausibility rule.

A cell reading that is not a number, not above 0 V or above twice ``max_cell_voltage`` is
implausible (a loose sense wire, a BMS glitch) and ignored, as the reference driver does.

Some BMSes also report their own lowest and highest cell, and some (JBD CAN, JK CAN v1) report
nothing else. ``sample_cell_stats`` takes the worse of the list and the reported extremes (the
reference prefers the reported pair; taking the worse can only make limits more careful), and for
an extremes-only BMS with a known series count it stands in for the list with the two extremes
plus the rest of the pack voltage shared evenly over the other cells. That stand-in is for the
control stages only: sinks never publish it as cell voltages.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from bmshost.model import Sample

NO_CEILING = 1e9  # a ceiling that keeps every positive finite reading


@attrs.define(slots=True)
class CellStats:
    count: int
    total: float  # sum of the plausible cells (the CVL logic uses this, not the BMS pack voltage)
    lowest: float
    highest: float
    cells: Sequence[float]  # the plausible cells (a stand-in when ``estimated``)
    estimated: bool = False  # built from the BMS's extremes and the pack voltage, not a list


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


def _plausible(value: float | None, ceiling: float) -> float | None:
    if isinstance(value, int | float) and 0.0 < value <= ceiling:  # NaN fails both comparisons
        return float(value)
    return None


def reported_extremes(sample: Sample, ceiling: float) -> tuple[float, float] | None:
    """The BMS's own (lowest, highest) cell when both are plausible and in order."""
    lo = _plausible(sample.cell_voltage_min, ceiling)
    hi = _plausible(sample.cell_voltage_max, ceiling)
    if lo is None or hi is None or lo > hi:
        return None
    return lo, hi


def sample_cell_stats(sample: Sample, ceiling: float) -> CellStats | None:
    """Cell statistics of a sample: its list, widened by the reported extremes, or for an
    extremes-only BMS with a known series count a stand-in list (see the module text)."""
    stats = cell_stats(sample.cell_voltages, ceiling)
    extremes = reported_extremes(sample, ceiling)
    if extremes is None:
        return stats
    lo, hi = extremes
    if stats is not None:
        if lo < stats.lowest:
            stats.lowest = lo
        if hi > stats.highest:
            stats.highest = hi
        return stats
    n = sample.series_cells
    if not isinstance(n, int) or n < 1:
        return None
    if n == 1:
        return CellStats(1, hi, hi, hi, (hi,), estimated=True)
    pack = sample.voltage
    middle = (lo + hi) / 2.0
    if n > 2 and isinstance(pack, int | float) and 0.0 < pack < n * ceiling:
        # the other cells share what the extremes leave of the pack, but stay between them
        middle = min(max((pack - lo - hi) / (n - 2), lo), hi)
    cells = (lo, *([middle] * (n - 2)), hi)
    return CellStats(n, sum(cells), lo, hi, cells, estimated=True)


def sample_cell_extremes(sample: Sample | None, ceiling: float) -> tuple[float, float] | None:
    """(lowest, highest) plausible cell of a sample, from its list and/or reported extremes."""
    if sample is None:
        return None
    stats = sample_cell_stats(sample, ceiling)
    if stats is not None:
        return stats.lowest, stats.highest
    return reported_extremes(sample, ceiling)


def finite_or_none(value: float | None) -> float | None:
    """The value when it is a finite number, else None (NaN/inf from a BMS are "unknown")."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return value
