"""SoC: source priority (§3.1), coulomb counting (§3.3), persistence (§3.4), resets (§3.5, §3.6)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC, Capability
from bmshost.control.current import CurrentStage
from bmshost.control.soc import SPECS, SocOptions, SocStage, SocSyncStage
from bmshost.errors import ConfigError
from bmshost.model import Sample
from bmshost.options import structure
from bmshost.stage import Stage, StageContext, Step


class Chain:
    """current -> soc -> soc_sync, driven with an injected clock."""

    def __init__(
        self,
        options: SocOptions,
        store: dict[str, Any] | None = None,
        caps: frozenset[Capability] = BASIC,
    ) -> None:
        self.store: dict[str, Any] = {} if store is None else store

        def make() -> StageContext:
            return StageContext(capabilities=caps, options=options, control={}, store=self.store)

        self.current = CurrentStage(make())
        self.soc = SocStage(make())
        self.sync = SocSyncStage(make())
        self.stages: list[Stage] = [self.current, self.soc, self.sync]

    def run(self, t: float, sample: Sample | None, **notes: Any) -> Step:
        step = Step(t=t, sample=sample, last_sample=sample)
        for stage in self.stages:
            if stage is self.sync:
                step.notes.update(notes)
            stage.step(step)
        return step


def pack(current: float, soc: float | None = 50.0, low_cell: float = 3.3, **kw: Any) -> Sample:
    return Sample(
        current=current, soc=soc, capacity_ah=100.0, cell_voltages=[low_cell] + [3.3] * 15, **kw
    )


CALC = SocOptions(soc_calculation=True)


def test_worked_example_counting_and_empty_detection() -> None:
    chain = Chain(CALC)
    assert chain.run(0, pack(-20.0)).derived.soc == 50.0  # seeded from the BMS's 50 %
    assert chain.run(1, pack(-20.0)).derived.soc == 49.994
    assert chain.run(2, pack(-20.0)).derived.soc == 49.989
    for t in range(3, 64):  # lowest cell at 2.900 V while discharging from t=3
        step = chain.run(t, pack(-20.0, low_cell=2.9))
        assert step.derived.soc is not None and step.derived.soc > 0
    assert chain.run(64, pack(-20.0, low_cell=2.9)).derived.soc == 0.0  # 64 - 3 = 61 > 60


def test_the_empty_timer_restarts_when_the_cell_recovers() -> None:
    chain = Chain(CALC)
    for t in range(0, 40):
        chain.run(t, pack(-20.0, low_cell=2.85))
    chain.run(40, pack(-20.0, low_cell=2.95))  # recovered: the reference kept its timer [QUIRK]
    for t in range(41, 101):
        assert chain.run(t, pack(-20.0, low_cell=2.85)).derived.soc != 0.0
    assert chain.run(102, pack(-20.0, low_cell=2.85)).derived.soc == 0.0


def test_charging_at_a_low_cell_does_not_count_as_empty() -> None:
    chain = Chain(CALC)
    for t in range(0, 200):
        assert chain.run(t, pack(1.0, low_cell=2.8)).derived.soc != 0.0


def test_min_cell_voltage_comes_from_the_cvl_section() -> None:
    class Cvl:
        min_cell_voltage = 3.0

    ctx = StageContext(capabilities=BASIC, options=CALC, control={"cvl": Cvl()}, store={})
    stage = SocStage(ctx)
    for t in range(0, 70):
        step = Step(t=t, sample=pack(-20.0, low_cell=2.95), last_sample=None)
        step.derived.current = -20.0
        stage.step(step)
    assert step.derived.soc == 0.0


def test_source_priority_external_then_calculated_then_bms() -> None:
    bms_only = Chain(SocOptions())
    step = bms_only.run(0, pack(-5.0, soc=42.0, remaining_ah=40.0))
    assert (step.derived.soc, step.derived.remaining_ah, step.derived.consumed_ah) == (
        42.0,
        40.0,
        -60.0,
    )
    assert step.notes["soc_source"] == "bms"
    step = bms_only.run(1, pack(-5.0, soc=42.0))  # no remaining Ah from the BMS: Q x SoC
    assert step.derived.remaining_ah == pytest.approx(42.0)
    calc = Chain(CALC)
    step = calc.run(0, pack(-5.0, soc=42.0, remaining_ah=10.0))
    assert step.derived.soc == 42.0 and step.derived.remaining_ah == pytest.approx(42.0)
    assert step.derived.soc_bms == 42.0
    external = Chain(CALC)
    step = Step(t=0, sample=pack(-5.0, soc=42.0), last_sample=None)
    step.notes["external_soc"] = 77.7777
    external.current.step(step)
    external.soc.step(step)
    assert step.derived.soc == 77.778 and step.notes["soc_source"] == "external"
    assert step.derived.soc_bms == 42.0


def test_bms_soc_none_publishes_none() -> None:
    step = Chain(SocOptions()).run(0, pack(1.0, soc=None))
    assert step.derived.soc is None


def test_first_start_without_any_soc_assumes_full() -> None:
    step = Chain(CALC).run(0, pack(-1.0, soc=None))
    assert step.derived.soc == 100.0


def test_a_gap_is_not_integrated() -> None:
    chain = Chain(CALC)
    chain.run(0, pack(-20.0))
    before = chain.run(1, pack(-20.0)).derived.soc
    assert before is not None
    for t in range(2, 500):
        step = chain.run(t, None)
        assert step.derived.soc == before  # the counter's value stays published while offline
    after = chain.run(500, pack(-20.0)).derived.soc
    assert after == before  # the first sample after the gap restarts the integration
    assert chain.run(501, pack(-20.0)).derived.soc == pytest.approx(before - 20 / 3600, abs=0.001)


def test_clock_jumps_are_not_integrated() -> None:
    chain = Chain(CALC)
    chain.run(1000, pack(-20.0))
    assert chain.run(5000, pack(-20.0)).derived.soc == 50.0  # 4000 s step: treated as a gap
    assert chain.run(10, pack(-20.0)).derived.soc == 50.0  # clock went backwards
    assert chain.run(11, pack(-20.0)).derived.soc == 49.994


def test_persistence_round_trip() -> None:
    store: dict[str, Any] = {}
    chain = Chain(CALC, store)
    for t in range(0, 100):
        last = chain.run(t, pack(-36.0)).derived.soc
    assert store["soc"] == last
    again = Chain(CALC, store)  # a restart: the BMS now says 90 %, the stored count wins
    assert again.run(200, pack(-36.0, soc=90.0)).derived.soc == last


def test_stored_soc_is_ignored_without_calculation_and_when_corrupt() -> None:
    assert Chain(SocOptions(), {"soc": 12.0}).run(0, pack(0.0, soc=60.0)).derived.soc == 60.0
    assert Chain(CALC, {"soc": "garbage"}).run(0, pack(0.0, soc=60.0)).derived.soc == 60.0
    assert Chain(CALC, {"soc": math.nan}).run(0, pack(0.0, soc=60.0)).derived.soc == 60.0


def test_manual_soc_reset_command() -> None:
    chain = Chain(CALC)
    chain.run(0, pack(-10.0))
    assert chain.soc.command("soc_reset", 80)
    assert chain.run(1, pack(-10.0)).derived.soc == 80.0  # re-initialised from the target
    assert chain.run(2, pack(-10.0)).derived.soc == pytest.approx(80.0 - 10 / 3600, abs=0.001)
    assert chain.soc.command("soc_reset", 150.0)  # clamped
    assert chain.run(3, pack(0.0)).derived.soc == 100.0
    assert not chain.soc.command("soc_reset", math.nan)
    assert not chain.soc.command("soc_reset", "50")
    assert not chain.soc.command("soc_reset", True)
    assert not chain.soc.command("history_clear", 1)
    # without the calculation the stage does not handle it: the host sends it to the BMS
    assert not Chain(SocOptions()).soc.command("soc_reset", 50.0)


def test_full_charge_anchors_the_counter_in_the_same_cycle() -> None:
    chain = Chain(CALC)
    chain.run(0, pack(10.0, soc=90.0))
    step = chain.run(1, pack(10.0, soc=90.0), full_charge=True)
    assert (step.derived.soc, step.derived.remaining_ah, step.derived.consumed_ah) == (
        100.0,
        100.0,
        0.0,
    )
    assert chain.store["soc"] == 100.0
    assert "bms_soc_reset_request" not in step.notes  # no SOC_RESET capability


def test_auto_reset_soc_asks_the_host_only_with_the_capability() -> None:
    caps = BASIC | {Capability.SOC_RESET}
    chain = Chain(SocOptions(), caps=caps)
    chain.run(0, pack(10.0, soc=93.0))
    step = chain.run(1, pack(10.0, soc=93.0), full_charge=True)
    assert step.notes["bms_soc_reset_request"] == 100.0
    assert step.derived.soc == 93.0  # the BMS's own SoC is not touched by the pipeline
    assert "bms_soc_reset_request" not in chain.run(2, pack(10.0, soc=93.0)).notes
    off = Chain(SocOptions(auto_reset_soc=False), caps=caps)
    assert "bms_soc_reset_request" not in off.run(1, pack(1.0), full_charge=True).notes


def test_soc_sync_predicate() -> None:
    sync = next(s for s in SPECS if s.name == "soc_sync")
    assert sync.predicate is not None
    assert not sync.predicate(BASIC, SocOptions())[0]
    assert sync.predicate(BASIC | {Capability.SOC_RESET}, SocOptions())[0]
    assert not sync.predicate(BASIC | {Capability.SOC_RESET}, SocOptions(auto_reset_soc=False))[0]
    assert sync.predicate(BASIC, CALC)[0]


def test_battery_capacity_is_used_when_the_bms_has_none() -> None:
    chain = Chain(SocOptions(soc_calculation=True, battery_capacity=200.0))
    step = chain.run(0, Sample(current=0.0, soc=50.0))
    assert step.derived.remaining_ah == 100.0 and step.notes["capacity_ah"] == 200.0
    with pytest.raises(ConfigError, match="battery_capacity"):
        structure({"battery_capacity": 0}, SocOptions, "control.soc")


def test_scenario_soc_drift_corrected_at_full() -> None:
    """Hours of cycling with a BMS current that reads 0.8 A low: the counted SoC drifts away
    from the truth, and the switch to float puts it back to 100 %."""
    chain = Chain(SocOptions(soc_calculation=True))
    q = 100.0
    true_ah = 100.0
    offset = -0.8
    t = 0.0
    dt = 10.0
    chain.run(t, pack(0.0, soc=100.0))
    # discharge 8 h at 10 A, then charge at 10 A until truly full
    for phase_current, seconds in ((-10.0, 8 * 3600), (10.0, 8 * 3600 - 600)):
        for _ in range(int(seconds / dt)):
            t += dt
            true_ah = min(q, max(0.0, true_ah + phase_current * dt / 3600))
            step = chain.run(t, pack(phase_current + offset, soc=None))
    drifted = step.derived.soc
    assert drifted is not None
    true_soc = true_ah / q * 100
    assert true_soc == pytest.approx(98.33, abs=0.01)  # nearly full
    assert true_soc - drifted == pytest.approx(0.8 * (16 * 3600 - 600) / 3600, abs=0.05)
    # Full: the CVL stage switches to float in this cycle.
    t += dt
    step = chain.run(t, pack(offset, soc=None), full_charge=True)
    assert step.derived.soc == 100.0
    # and the discharge that follows counts down from the anchor
    for _ in range(360):
        t += dt
        step = chain.run(t, pack(-10.0, soc=None))
    assert step.derived.soc == pytest.approx(90.0, abs=0.01)


cycles = st.lists(
    st.tuples(
        st.floats(0, 400),  # dt
        st.one_of(st.none(), st.floats(-500, 500), st.just(math.nan), st.just(math.inf)),
        st.one_of(st.none(), st.floats(-10, 110)),  # BMS SoC (garbage included)
        st.floats(0, 5),  # lowest cell
        st.booleans(),  # online
        st.booleans(),  # full charge event
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(cycles, st.one_of(st.none(), st.floats(1, 1000)))
def test_soc_stays_within_0_and_100_and_is_never_nan(
    seq: list[Any], capacity: float | None
) -> None:
    chain = Chain(CALC)
    t = 0.0
    for dt, current, soc, low, online, full in seq:
        t += dt
        sample = (
            Sample(current=current, soc=soc, capacity_ah=capacity, cell_voltages=[low, 3.3])
            if online
            else None
        )
        step = chain.run(t, sample, full_charge=full)
        value = step.derived.soc
        if value is not None:
            assert 0.0 <= value <= 100.0 and not math.isnan(value)
        if step.derived.remaining_ah is not None:
            assert math.isfinite(step.derived.remaining_ah)
