"""The simulators' shared physics: curve lookup, charge integration, protections."""

from __future__ import annotations

import pytest

from bmshost.simpack import LIFEPO4_OCV, SimulatedPack, interpolate


def test_interpolate_is_linear_and_clamped() -> None:
    table = ((0.0, 1.0), (10.0, 2.0), (20.0, 4.0))
    assert interpolate(table, -5) == 1.0 and interpolate(table, 25) == 4.0
    assert interpolate(table, 5) == pytest.approx(1.5) and interpolate(table, 15) == pytest.approx(3.0)
    assert interpolate(LIFEPO4_OCV, 60) == pytest.approx(3.30)


def test_integration_counts_cycles_and_respects_fets() -> None:
    pack = SimulatedPack(capacity_ah=10.0, soc=50.0, current=10.0)
    assert pack.integrate(1800) == 10.0
    assert pack.soc == pytest.approx(100.0) and pack.cycles == 0 and pack.remaining_ah == pytest.approx(10.0)
    pack.soc = 0.0
    pack.integrate(1800)
    assert pack.cycles == 1  # 10 Ah charged in all: one full cycle
    pack.charge_fet = False
    assert pack.integrate(3600) == 0.0
    pack.current = -5.0
    assert pack.integrate(360) == -5.0 and pack.soc == pytest.approx(45.0)


def test_trips_open_the_fets_and_release_with_hysteresis() -> None:
    pack = SimulatedPack()
    pack.trip([3.70, 3.30], high=3.65, low=2.5, high_release=3.55)
    assert pack.high_cell_trip and not pack.charge_fet and pack.discharge_fet
    pack.trip([3.60, 3.30], high=3.65, low=2.5, high_release=3.55)
    assert pack.high_cell_trip  # inside the hysteresis band
    pack.trip([3.50, 3.30], high=3.65, low=2.5, high_release=3.55)
    assert not pack.high_cell_trip and not pack.charge_fet  # the FET stays until switched
    pack.trip([3.30, 2.40], high=3.65, low=2.5)
    assert pack.low_cell_trip and not pack.discharge_fet
