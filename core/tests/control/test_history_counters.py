"""Battery history (spec §4.8): counters, seeds, clear groups, persistence, properties."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC, Capability
from bmshost.control.history import CLEAR_GROUPS, SPECS, HistoryOptions, HistoryStage
from bmshost.model import History, Sample
from bmshost.stage import StageContext, Step


class Cvl:  # the CVL section as the history stage reads shared values from it
    float_cell_voltage = 3.375
    max_cell_voltage = 3.45


def stage(store: dict[str, Any] | None = None, caps: frozenset[Capability] = BASIC) -> HistoryStage:
    ctx = StageContext(
        capabilities=caps,
        options=HistoryOptions(),
        control={"cvl": Cvl()},
        store={} if store is None else store,
    )
    return HistoryStage(ctx)


def cycle(
    h: HistoryStage,
    t: float,
    sample: Sample | None,
    *,
    current: float | None = None,
    avg: float | None = None,
    soc: float | None = None,
    consumed: float | None = None,
    q: float = 280.0,
    alarms: dict[str, int] | None = None,
    temps: tuple[float, float] | None = None,
    **notes: Any,
) -> History:
    step = Step(t=t, sample=sample, last_sample=sample)
    step.derived.current = current
    step.derived.current_avg = avg
    step.derived.soc = soc
    step.derived.consumed_ah = consumed
    step.derived.alarms = alarms
    if temps:
        step.derived.min_temperature, step.derived.max_temperature = temps
    step.notes["capacity_ah"] = q
    step.notes.update(notes)
    h.step(step)
    assert step.derived.history is not None
    return step.derived.history


def cells(v: float = 3.3, n: int = 16) -> list[float]:
    return [v] * n


def test_energy_and_ah_seed_from_the_bms_cycle_count() -> None:
    h = stage()
    hist = cycle(h, 0, Sample(voltage=53.0, cycles=100, cell_voltages=cells()), q=280.0)
    assert hist.charged_energy == 1512.0 and hist.discharged_energy == 1512.0
    assert hist.total_ah_drawn == -28000.0
    assert hist.charge_cycles == 100.0


def test_cycle_example_and_average_discharge() -> None:
    """560 Ah drawn with Q = 280 Ah is 2.0 cycles; two discharges of 280 Ah average 280 Ah."""
    h = stage()
    t = 0.0
    sample = Sample(voltage=52.0, cell_voltages=cells())
    for _ in range(2):
        for _ in range(280):  # 280 A for 280 x 3600 s would be slow; -3600 A x 1 s = 1 Ah per step
            t += 1
            hist = cycle(h, t, sample, current=-3600.0, avg=-3600.0)
        t += 1
        hist = cycle(h, t, sample, current=10.0, avg=10.0)  # charging ends the discharge
    assert hist.total_ah_drawn == pytest.approx(-560.0)
    assert hist.charge_cycles == pytest.approx(2.0)
    assert hist.average_discharge == pytest.approx(-280.0)
    assert hist.last_discharge == pytest.approx(-280.0)


def test_last_discharge_restarts_with_each_discharge() -> None:
    h = stage()
    sample = Sample(voltage=52.0)
    for t in range(1, 11):
        hist = cycle(h, t, sample, current=-360.0, avg=-360.0)  # 0.1 Ah per second
    assert hist.last_discharge == pytest.approx(-0.9)  # left rectangle: 9 intervals so far
    cycle(h, 11, sample, current=5.0, avg=5.0)
    cycle(h, 12, sample, current=-360.0, avg=-1.0)  # a new discharge starts
    hist = cycle(h, 13, sample, current=-360.0, avg=-1.0)
    assert hist.last_discharge == pytest.approx(-0.1)
    assert hist.average_discharge == pytest.approx(-1.0)  # the completed one


def test_deepest_discharge_full_discharges_and_rearm() -> None:
    h = stage()
    s = Sample(voltage=50.0)
    cycle(h, 1, s, soc=50.0, consumed=-140.0)
    hist = cycle(h, 2, s, soc=0.0, consumed=-280.0)
    assert hist.full_discharges == 1 and hist.deepest_discharge == -280.0
    assert cycle(h, 3, s, soc=0.0).full_discharges == 1  # counted once
    assert cycle(h, 4, s, soc=10.0).full_discharges == 1
    assert cycle(h, 5, s, soc=0.0).full_discharges == 1  # not re-armed below 15 %
    cycle(h, 6, s, soc=16.0)
    assert cycle(h, 7, s, soc=0.0).full_discharges == 2


def test_extremes_skip_implausible_cells() -> None:
    h = stage()
    cycle(h, 1, Sample(voltage=52.0, cell_voltages=[3.2, 3.4, 0.0, 9.0]), temps=(5.0, 30.0))
    hist = cycle(h, 2, Sample(voltage=55.0, cell_voltages=[3.3, 3.5]), temps=(-3.0, 20.0))
    assert (hist.minimum_voltage, hist.maximum_voltage) == (52.0, 55.0)
    assert (hist.minimum_cell_voltage, hist.maximum_cell_voltage) == (3.2, 3.5)
    assert (hist.minimum_temperature, hist.maximum_temperature) == (-3.0, 30.0)


def test_full_charge_sets_syncs_and_time_since_last_full_charge() -> None:
    h = stage()
    s = Sample(voltage=54.0)
    assert cycle(h, 100, s).time_since_last_full_charge is None
    hist = cycle(h, 200, s, full_charge=True)
    assert hist.automatic_syncs == 1 and hist.time_since_last_full_charge == 0.0
    assert cycle(h, 3800, None).time_since_last_full_charge == 3600.0  # also while offline


def test_alarm_counters_count_rising_edges() -> None:
    h = stage()
    s = Sample(voltage=50.0)
    cycle(h, 1, s, alarms={"low_cell_voltage": 0})
    assert cycle(h, 2, Sample(voltage=50.0, alarms={"low_voltage": 1})).low_voltage_alarms == 1
    assert cycle(h, 3, Sample(voltage=50.0, alarms={"low_voltage": 2})).low_voltage_alarms == 1
    cycle(h, 4, s)
    assert cycle(h, 5, s, alarms={"low_cell_voltage": 2}).low_voltage_alarms == 2
    assert cycle(h, 6, s, alarms={"high_cell_voltage": 1}).high_voltage_alarms == 1
    assert cycle(h, 7, None).high_voltage_alarms == 1  # offline cycles are not edges


def test_energy_integration_uses_the_previous_power() -> None:
    h = stage()
    cycle(h, 0, Sample(voltage=50.0), current=100.0)  # 5000 W
    hist = cycle(h, 3600, Sample(voltage=50.0), current=-20.0)  # step too long: a gap
    assert hist.charged_energy == 0.0
    for t in range(3601, 3601 + 3600):
        hist = cycle(h, t, Sample(voltage=50.0), current=-20.0)  # -1000 W for 1 h
    assert hist.discharged_energy == pytest.approx(1.0, abs=0.001)
    assert hist.charged_energy == 0.0


def test_bms_supplied_charge_cycles_are_used_as_is() -> None:
    h = stage(caps=BASIC | {Capability.CHARGE_CYCLE_HISTORY})
    assert cycle(h, 0, Sample(voltage=50.0, cycles=7)).charge_cycles == 7.0
    assert h.command("history_clear", 1)
    assert cycle(h, 1, Sample(voltage=50.0, cycles=7)).charge_cycles == 7.0


def _busy(h: HistoryStage) -> History:
    t = 0.0
    for i in range(30):
        t += 1
        cycle(
            h,
            t,
            Sample(voltage=50.0 + i / 10, cycles=3, cell_voltages=cells(3.3 + i / 1000)),
            current=-100.0,
            avg=-100.0,
            soc=0.0 if i == 5 else 40.0,
            consumed=-100.0,
            temps=(10.0, 20.0 + i),
            alarms={"low_voltage": i % 2, "high_voltage": (i % 3 == 0 and 1) or 0},
        )
    return cycle(h, t + 1, Sample(voltage=51.0), full_charge=True)


@pytest.mark.parametrize("group", sorted(CLEAR_GROUPS))
def test_clear_groups_reset_only_their_values(group: int) -> None:
    h = stage()
    before = _busy(h)
    assert h.command("history_clear", group)
    after = cycle(h, 1000, None)
    groups = {
        2: {
            "deepest_discharge",
            "last_discharge",
            "average_discharge",
            "charge_cycles",
            "full_discharges",
            "total_ah_drawn",
        },
        3: {"minimum_voltage", "maximum_voltage", "minimum_cell_voltage", "maximum_cell_voltage"},
        4: {"time_since_last_full_charge", "automatic_syncs"},
        5: {"low_voltage_alarms", "high_voltage_alarms"},
        6: {"minimum_temperature", "maximum_temperature"},
        7: {"discharged_energy", "charged_energy"},
    }
    groups[1] = set().union(*groups.values())
    fresh = cycle(stage(), 0, None)
    b, a, f = before.to_json_dict(), after.to_json_dict(), fresh.to_json_dict()
    for name in groups[group]:
        assert a.get(name) == f.get(name), name
        assert b.get(name) != f.get(name), name  # the busy history had a value to clear
    for name in set(b) - groups[group] - {"time_since_last_full_charge"}:
        assert a.get(name) == b.get(name), name


def test_clear_command_rejects_bad_groups() -> None:
    h = stage()
    for value in (0, 8, "1", True, 1.5, None):
        assert not h.command("history_clear", value)
    assert h.command("history_clear", 3.0)
    assert not h.command("soc_reset", 1)


def test_persistence_round_trip() -> None:
    store: dict[str, Any] = {}
    h = stage(store)
    before = _busy(h)
    again = stage(store)
    after = cycle(again, 31, None)
    assert after == before


def test_corrupt_store_starts_fresh_without_crashing() -> None:
    store = {
        "values": {
            "total_ah_drawn": "x",
            "automatic_syncs": -3,
            "minimum_voltage": math.inf,
            "bogus": 1,
            "seeded": 1,
        }
    }
    hist = cycle(stage(store), 0, None)
    assert hist.total_ah_drawn == 0.0 and hist.automatic_syncs == 0 and hist.minimum_voltage is None
    assert cycle(stage({"values": [1, 2]}), 0, None).automatic_syncs == 0


def test_store_is_updated_at_most_every_15_s_unless_something_happened() -> None:
    store: dict[str, Any] = {}
    h = stage(store)
    cycle(h, 0, Sample(voltage=50.0))
    store.clear()
    cycle(h, 5, Sample(voltage=51.0))
    assert "values" not in store
    cycle(h, 6, Sample(voltage=51.0), full_charge=True)
    assert store["values"]["automatic_syncs"] == 1
    store.clear()
    cycle(h, 21, Sample(voltage=51.0))
    assert store["values"]["maximum_voltage"] == 51.0


def test_history_predicate() -> None:
    spec = SPECS[0]
    assert spec.predicate is not None
    assert spec.predicate(BASIC, HistoryOptions())[0]
    assert not spec.predicate(BASIC, HistoryOptions(history_enable=False))[0]


steps = st.lists(
    st.tuples(
        st.floats(0, 400),
        st.booleans(),
        st.one_of(st.none(), st.floats(-300, 300)),
        st.one_of(st.none(), st.floats(0, 100)),
        st.one_of(st.none(), st.floats(0, 70)),
        st.booleans(),
        st.integers(0, 2),
        st.one_of(st.none(), st.integers(1, 7)),
    ),
    max_size=50,
)

MONOTONIC = (
    "automatic_syncs",
    "full_discharges",
    "low_voltage_alarms",
    "high_voltage_alarms",
    "charged_energy",
    "discharged_energy",
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_counters_never_decrease_unless_cleared(seq: list[Any]) -> None:
    h = stage()
    t = 0.0
    previous: History | None = None
    for dt, online, current, soc, voltage, full, alarm, clear in seq:
        t += dt
        sample = (
            Sample(voltage=voltage, alarms={"low_voltage": alarm}, cell_voltages=cells())
            if online
            else None
        )
        hist = cycle(h, t, sample, current=current, avg=current, soc=soc, full_charge=full)
        for value in hist.to_json_dict().values():
            assert not (isinstance(value, float) and math.isnan(value))
        if previous is not None:
            for name in MONOTONIC:
                assert getattr(hist, name) >= getattr(previous, name), name
            assert hist.total_ah_drawn is not None and previous.total_ah_drawn is not None
            assert hist.total_ah_drawn <= previous.total_ah_drawn  # negative and growing
        if hist.minimum_voltage is not None and hist.maximum_voltage is not None:
            assert hist.minimum_voltage <= hist.maximum_voltage
        previous = hist
        if clear is not None:
            assert h.command("history_clear", clear)
            previous = None
