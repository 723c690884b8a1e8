"""BMSes that report only their lowest and highest cell (JBD CAN, JK CAN v1), and BMSes that report
their extremes besides the list: ``bmshost.control.cells`` and what the limit stages make of it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bmshost.control.cells import reported_extremes, sample_cell_extremes, sample_cell_stats
from bmshost.model import Sample

from .test_pipeline_limits import make

CEILING = 6.9


def extremes_only(**kw: Any) -> Sample:
    kw.setdefault("voltage", 52.96)
    kw.setdefault("cell_voltage_min", 3.30)
    kw.setdefault("cell_voltage_max", 3.34)
    kw.setdefault("series_cells", 16)
    kw.setdefault("temperatures", [25.0])
    return Sample(**kw)


def test_the_list_is_widened_by_the_reported_extremes_never_narrowed() -> None:
    s = Sample(cell_voltages=[3.30, 3.31, 3.32], cell_voltage_min=3.25, cell_voltage_max=3.31)
    stats = sample_cell_stats(s, CEILING)
    assert stats is not None and not stats.estimated
    assert (stats.lowest, stats.highest, stats.count) == (3.25, 3.32, 3)
    assert stats.total == pytest.approx(9.93)  # the list's sum: the extremes change no total


def test_extremes_only_stand_in_keeps_the_pack_voltage_and_the_extremes() -> None:
    stats = sample_cell_stats(extremes_only(), CEILING)
    assert stats is not None and stats.estimated
    assert (stats.count, stats.lowest, stats.highest) == (16, 3.30, 3.34)
    assert stats.total == pytest.approx(52.96)
    assert min(stats.cells) == 3.30 and max(stats.cells) == 3.34


def test_the_stand_in_middle_stays_between_the_extremes() -> None:
    # a pack voltage that disagrees with the cells (sense offset) cannot invent a higher cell
    stats = sample_cell_stats(extremes_only(voltage=60.0), CEILING)
    assert stats is not None and max(stats.cells) == 3.34
    stats = sample_cell_stats(extremes_only(voltage=None), CEILING)
    assert stats is not None and stats.total == pytest.approx(3.30 + 3.34 + 14 * 3.32)


@pytest.mark.parametrize(
    "kw",
    [
        {"series_cells": None},
        {"series_cells": 0},
        {"cell_voltage_min": None},
        {"cell_voltage_min": 3.4, "cell_voltage_max": 3.3},  # out of order
        {"cell_voltage_max": math.nan},
        {"cell_voltage_max": 9.0},  # above twice max_cell_voltage: implausible
        {"cell_voltage_min": 0.0},
    ],
)
def test_no_stats_without_a_count_or_with_implausible_extremes(kw: dict[str, Any]) -> None:
    assert sample_cell_stats(extremes_only(**kw), CEILING) is None


def test_extremes_without_a_count_still_feed_alarms_and_history() -> None:
    s = extremes_only(series_cells=None)
    assert sample_cell_extremes(s, CEILING) == (3.30, 3.34)
    assert reported_extremes(s, CEILING) == (3.30, 3.34)
    assert s.min_cell_voltage == 3.30 and s.max_cell_voltage == 3.34 and s.cell_count is None
    assert sample_cell_extremes(None, CEILING) is None


def test_an_extremes_only_pack_gets_a_cvl_and_is_allowed_to_charge() -> None:
    step = make().run(0.0, extremes_only())
    full = make().run(0.0, Sample(voltage=52.96, cell_voltages=[3.30] + [3.32] * 14 + [3.34],
                                  temperatures=[25.0]))
    assert step.limits.cvl == full.limits.cvl == pytest.approx(16 * 3.45)
    assert step.limits.ccl == full.limits.ccl and step.limits.ccl
    assert step.limits.max_charge_cell_voltage == pytest.approx(3.45)


def test_protection_cutoffs_work_from_the_extremes_alone() -> None:
    raw = {"current_limits": {"cccm_cv_enable": False, "dccm_cv_enable": False}}
    p = make(raw)
    step = p.run(0.0, extremes_only(cell_voltage_max=3.51))
    assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "Cell Voltage")
    step = p.run(1.0, extremes_only(cell_voltage_min=2.79))
    assert (step.limits.dcl, step.limits.discharge_limitation) == (0.0, "Cell Voltage")


def test_a_reported_high_cell_beyond_the_list_limits_charging() -> None:
    # the BMS saw a higher cell than its list shows (a different sampling instant): the worse counts
    raw = {"current_limits": {"cccm_cv_enable": False, "dccm_cv_enable": False}}
    s = Sample(cell_voltages=[3.30] * 16, cell_voltage_max=3.52, cell_voltage_min=3.30,
               temperatures=[25.0])
    step = make(raw).run(0.0, s)
    assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "Cell Voltage")


@given(
    lo=st.floats(0.5, 4.5),
    spread=st.floats(0.0, 1.0),
    n=st.integers(1, 48),
    pack=st.one_of(st.none(), st.floats(-10, 400), st.just(math.nan), st.just(math.inf)),
)
def test_stand_in_properties(lo: float, spread: float, n: int, pack: float | None) -> None:
    hi = lo + spread
    stats = sample_cell_stats(
        Sample(cell_voltage_min=lo, cell_voltage_max=hi, series_cells=n, voltage=pack), CEILING
    )
    assert stats is not None
    assert stats.count == len(stats.cells) == n
    assert stats.highest == hi and all(lo <= c <= hi for c in stats.cells)
    assert stats.total == pytest.approx(sum(stats.cells))
