"""Driver-raised alarms with thresholds and hysteresis (spec §4.9)."""

from __future__ import annotations

from typing import Any

import pytest

from bmshost.capabilities import BASIC
from bmshost.control.alarms import SPECS, AlarmOptions, AlarmsStage
from bmshost.errors import ConfigError
from bmshost.model import ALARM_NAMES, Sample
from bmshost.options import structure
from bmshost.stage import StageContext, Step


def make(**options: Any) -> AlarmsStage:
    return AlarmsStage(
        StageContext(capabilities=BASIC, options=AlarmOptions(**options), control={}, store={})
    )


def level(
    stage: AlarmsStage,
    name: str,
    soc: float | None = None,
    sample: Sample | None = None,
    temps: tuple[float, float] | None = None,
    existing: dict[str, int] | None = None,
    **notes: Any,
) -> int | None:
    step = Step(t=0.0, sample=sample, last_sample=sample)
    step.derived.soc = soc
    step.derived.alarms = existing
    if temps:
        step.derived.min_temperature, step.derived.max_temperature = temps
    step.notes.update(notes)
    stage.step(step)
    assert step.derived.alarms is not None
    assert set(step.derived.alarms) <= set(ALARM_NAMES)
    return step.derived.alarms.get(name)


def test_low_soc_levels_as_the_reference_computes_them() -> None:
    assert level(make(), "low_soc", soc=9.0) == 2
    assert level(make(), "low_soc", soc=15.0) == 1
    assert level(make(), "low_soc", soc=25.0) == 0
    assert level(make(), "low_soc", soc=20.0) == 0  # strictly below the warning level
    assert level(make(), "low_soc", soc=10.0) == 1


def test_low_soc_hysteresis() -> None:
    stage = make()
    assert level(stage, "low_soc", soc=9.0) == 2
    assert level(stage, "low_soc", soc=11.0) == 2  # not yet 2 % above the alarm level
    assert level(stage, "low_soc", soc=12.0) == 1
    assert level(stage, "low_soc", soc=21.9) == 1
    assert level(stage, "low_soc", soc=22.0) == 0
    assert level(stage, "low_soc", soc=19.9) == 1  # rising is immediate


def test_unknown_input_keeps_the_last_level() -> None:
    stage = make()
    assert level(stage, "low_soc", soc=None) is None  # never known: not published
    level(stage, "low_soc", soc=5.0)
    assert level(stage, "low_soc", soc=None) == 2


def test_high_temperature_and_cell_rules_are_off_by_default() -> None:
    stage = make()
    sample = Sample(cell_voltages=[3.9, 2.0], mosfet_temperature=120.0)
    assert level(stage, "high_temperature", soc=50.0, sample=sample, temps=(-30.0, 90.0)) is None
    assert level(stage, "cell_imbalance", soc=50.0, sample=sample) is None


def test_optional_rules_with_hysteresis() -> None:
    stage = make(
        high_temperature_warning=45.0,
        high_temperature_alarm=55.0,
        low_temperature_alarm=0.0,
        cell_imbalance_warning=0.1,
        high_cell_voltage_alarm=3.65,
        low_cell_voltage_warning=2.9,
        high_internal_temperature_alarm=80.0,
    )
    assert level(stage, "high_temperature", temps=(20.0, 50.0)) == 1
    assert level(stage, "high_temperature", temps=(20.0, 56.0)) == 2
    assert level(stage, "high_temperature", temps=(20.0, 54.0)) == 2
    assert level(stage, "high_temperature", temps=(20.0, 53.0)) == 1
    assert level(stage, "high_temperature", temps=(20.0, 42.9)) == 0
    assert level(stage, "low_temperature", temps=(-1.0, 20.0)) == 2
    sample = Sample(cell_voltages=[3.30, 3.45, 3.70], mosfet_temperature=81.0)
    assert level(stage, "cell_imbalance", sample=sample) == 1
    assert level(stage, "high_cell_voltage", sample=sample) == 2
    assert level(stage, "high_internal_temperature", sample=sample) == 2
    assert level(stage, "low_cell_voltage", sample=Sample(cell_voltages=[2.85, 3.3])) == 1
    assert (
        level(stage, "low_cell_voltage", sample=Sample(cell_voltages=[2.93, 3.3])) == 1
    )  # hysteresis 0.05
    assert level(stage, "low_cell_voltage", sample=Sample(cell_voltages=[2.96, 3.3])) == 0


def test_soc_reset_charge_suppresses_the_high_cell_alarm() -> None:
    stage = make(high_cell_voltage_alarm=3.6)
    sample = Sample(cell_voltages=[3.64, 3.3])
    assert level(stage, "high_cell_voltage", sample=sample, suppress_high_voltage_alarms=True) == 0
    assert level(stage, "high_cell_voltage", sample=sample) == 2


def test_merging_keeps_other_stages_alarms_and_the_higher_level() -> None:
    stage = make()
    step = Step(t=0.0, sample=None, last_sample=None)
    step.derived.soc = 15.0
    step.derived.alarms = {"bms_cable": 2, "low_soc": 2}
    stage.step(step)
    assert step.derived.alarms == {"bms_cable": 2, "low_soc": 2}
    step = Step(t=1.0, sample=None, last_sample=None)
    step.derived.soc = 5.0
    step.derived.alarms = {"bms_cable": 1, "low_soc": 0}
    stage.step(step)
    assert step.derived.alarms == {"bms_cable": 1, "low_soc": 2}


def test_predicate_and_disabling() -> None:
    spec = SPECS[0]
    assert spec.predicate is not None
    assert spec.predicate(BASIC, AlarmOptions())[0]
    off = AlarmOptions(soc_low_warning=None, soc_low_alarm=None)
    assert not spec.predicate(BASIC, off)[0]
    only_alarm = make(soc_low_warning=None)
    assert level(only_alarm, "low_soc", soc=15.0) == 0
    assert level(only_alarm, "low_soc", soc=5.0) == 2


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"soc_low_warning": 10, "soc_low_alarm": 20},
            "soc_low_alarm must not be above soc_low_warning",
        ),
        ({"high_temperature_warning": 50, "high_temperature_alarm": 40}, "must not be below"),
        ({"soc_low_alarm": 120}, "soc_low_alarm: must be between"),
        ({"soc_low_hysteresis": -1}, "soc_low_hysteresis: must be between"),
        ({"cell_imbalance_warning": "x"}, "control.alarms.cell_imbalance_warning"),
    ],
)
def test_bad_alarm_options(table: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        structure(table, AlarmOptions, "control.alarms")
    assert expected in str(info.value)
