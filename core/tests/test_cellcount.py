"""``bmshost.cellcount``: the latched series cell count of extremes-only BMSes."""

from __future__ import annotations

import logging
import math

import pytest

from bmshost.cellcount import SeriesCellLatch
from bmshost.model import Sample


def s(v: float | None, lo: float | None, hi: float | None) -> Sample:
    return Sample(voltage=v, cell_voltage_min=lo, cell_voltage_max=hi)


def test_a_confident_estimate_is_latched_and_survives_a_wide_spread() -> None:
    latch = SeriesCellLatch()
    assert latch.apply(s(52.96, 3.30, 3.32)).series_cells == 16
    # one cell runs away at the top of charge: V/mean(min,max) says 15, the latch keeps 16
    runaway = s(53.9, 3.35, 3.65)
    assert round(53.9 / 3.5) == 15
    assert latch.apply(runaway).series_cells == 16


def test_no_count_before_a_confident_reading() -> None:
    latch = SeriesCellLatch()
    assert latch.apply(s(52.7, 2.9, 3.3)).series_cells is None  # spread too wide
    assert latch.apply(s(52.0, 3.30, 3.32)).series_cells is None  # 15.71: not near a whole number
    assert latch.apply(s(None, 3.3, 3.3)).series_cells is None
    assert latch.apply(s(math.nan, 3.3, 3.3)).series_cells is None
    assert latch.apply(s(52.8, 0.0, 3.3)).series_cells is None
    assert latch.apply(s(700.0, 3.3, 3.3)).series_cells is None  # over 64 cells


def test_a_disagreeing_confident_estimate_replaces_the_latch_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    latch = SeriesCellLatch(name="bank")
    latch.apply(s(26.4, 3.30, 3.30))
    with caplog.at_level(logging.WARNING, "bmshost.cellcount"):
        assert latch.apply(s(52.8, 3.30, 3.30)).series_cells == 16
    assert "bank: series cell count estimate changed from 8 to 16" in caplog.text


def test_a_configured_count_wins_and_a_list_or_a_reported_count_is_left_alone() -> None:
    assert SeriesCellLatch(configured=15).apply(s(52.96, 3.30, 3.32)).series_cells == 15
    listed = Sample(voltage=13.2, cell_voltages=[3.3] * 4, cell_voltage_min=3.3, cell_voltage_max=3.3)
    assert SeriesCellLatch().apply(listed).series_cells is None
    reported = Sample(voltage=52.8, cell_voltage_min=3.3, cell_voltage_max=3.3, series_cells=16)
    assert SeriesCellLatch(configured=8).apply(reported).series_cells == 16
