"""Current pipeline: correction map (spec §3.2), FET clamp (§2.7), external sensor (§4.4)."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC
from bmshost.control.current import (
    SPECS as CURRENT_SPECS,
)
from bmshost.control.current import (
    CorrectionMap,
    CurrentStage,
    SensorOptions,
    SensorStage,
)
from bmshost.control.soc import SocOptions
from bmshost.errors import ConfigError
from bmshost.model import Sample
from bmshost.options import structure
from bmshost.stage import StageContext, Step


def ctx(options: Any) -> StageContext:
    return StageContext(capabilities=BASIC, options=options, control={}, store={})


def processed(
    stage: CurrentStage, sample: Sample | None, notes: dict[str, Any] | None = None
) -> float | None:
    step = Step(t=0.0, sample=sample, last_sample=sample)
    if notes:
        step.notes.update(notes)
    stage.step(step)
    return step.derived.current


EXAMPLE = SocOptions(
    current_reported_by_bms=[-300.0, -0.5, 0.5, 300.0],
    current_measured_by_user=[-300.0, 0.0, 0.0, 300.0],
)


@pytest.mark.parametrize(
    ("reported", "measured"),
    [(0.3, 0.0), (-0.4, 0.0), (10.0, 9.516), (350.0, 300.0), (-350.0, -300.0), (-10.0, -9.516)],
)
def test_worked_example_of_the_correction_map(reported: float, measured: float) -> None:
    stage = CurrentStage(ctx(EXAMPLE))
    assert processed(stage, Sample(current=reported)) == measured


def test_identical_tables_leave_the_current_untouched() -> None:
    stage = CurrentStage(ctx(SocOptions()))
    assert processed(stage, Sample(current=12.34567)) == 12.34567


def test_a_descending_table_maps_like_the_ascending_one() -> None:
    opts = SocOptions(
        current_reported_by_bms=[300.0, 0.5, -0.5, -300.0],
        current_measured_by_user=[300.0, 0.0, 0.0, -300.0],
    )
    stage = CurrentStage(ctx(opts))
    assert processed(stage, Sample(current=10.0)) == 9.516


def test_fet_off_clamps_the_current_in_its_direction() -> None:
    stage = CurrentStage(ctx(SocOptions()))
    assert processed(stage, Sample(current=5.0, charge_fet=False)) == 0.0
    assert processed(stage, Sample(current=-5.0, charge_fet=False)) == -5.0
    assert processed(stage, Sample(current=-5.0, discharge_fet=False)) == 0.0
    assert processed(stage, Sample(current=5.0, discharge_fet=False)) == 5.0
    assert processed(stage, Sample(current=5.0, charge_fet=None, discharge_fet=None)) == 5.0


def test_no_sample_or_no_current_gives_no_processed_current() -> None:
    stage = CurrentStage(ctx(SocOptions()))
    assert processed(stage, None) is None
    assert processed(stage, Sample(voltage=52.0)) is None
    assert processed(stage, Sample(current=math.nan)) is None


def test_external_current_replaces_the_bms_current_uncorrected_but_fet_clamped() -> None:
    stage = CurrentStage(ctx(EXAMPLE))
    assert processed(stage, Sample(current=10.0), {"external_current": 0.3}) == 0.3
    assert (
        processed(stage, Sample(current=10.0, charge_fet=False), {"external_current": 4.0}) == 0.0
    )


def test_sensor_stage_feeds_values_given_by_commands() -> None:
    opts = SensorOptions(
        external_sensor_dbus_device="com.victronenergy.battery.ttyS2",
        external_sensor_dbus_path_current="/Dc/0/Current",
        external_sensor_dbus_path_soc="/Soc",
    )
    sensor = SensorStage(ctx(opts))
    step = Step(t=0.0, sample=Sample(current=1.0), last_sample=None)
    sensor.step(step)
    assert "external_current" not in step.notes  # nothing received yet: BMS values are used
    assert sensor.command("external_current", -12.34567)
    assert sensor.command("external_soc", 55.5)
    step = Step(t=1.0, sample=Sample(current=1.0), last_sample=None)
    sensor.step(step)
    assert step.notes["external_current"] == -12.346
    assert step.notes["external_soc"] == 55.5
    # invalid values are refused and count as "sensor absent"; None says the sensor went away
    assert not sensor.command("external_current", math.nan)
    assert not sensor.command("external_soc", 150.0)
    assert not sensor.command("external_soc", True)
    step = Step(t=2.0, sample=Sample(current=1.0), last_sample=None)
    sensor.step(step)
    assert "external_current" not in step.notes and "external_soc" not in step.notes
    assert sensor.command("external_current", None)
    assert not sensor.command("something_else", 1.0)


def test_sensor_without_a_soc_path_ignores_soc_values() -> None:
    opts = SensorOptions(external_sensor_dbus_device="dev", external_sensor_dbus_path_current="/I")
    sensor = SensorStage(ctx(opts))
    assert not sensor.command("external_soc", 50.0)


def test_sensor_stage_is_only_in_the_pipeline_when_configured() -> None:
    spec = CURRENT_SPECS[0]
    assert spec.predicate is not None
    assert spec.predicate(BASIC, SensorOptions())[0] is False
    assert spec.predicate(BASIC, SensorOptions(external_sensor_dbus_device="d"))[0] is True


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {
                "current_reported_by_bms": [-300, 5, 0, 300],
                "current_measured_by_user": [-300, 0, 0, 300],
            },
            "current_reported_by_bms: breakpoints must be strictly",
        ),
        (
            {"current_reported_by_bms": [-300, 300], "current_measured_by_user": [-300, 0, 300]},
            "must have the same length",
        ),
        ({"current_reported_by_bms": [1], "current_measured_by_user": [1]}, "at least two points"),
        ({"current_reported_by_bms": "x"}, "control.soc.current_reported_by_bms"),
    ],
)
def test_bad_correction_tables_are_config_errors_naming_the_table(
    table: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        structure(table, SocOptions, "control.soc")
    assert expected in str(info.value)


def test_external_sensor_paths_are_checked() -> None:
    with pytest.raises(ConfigError, match="external_sensor_dbus_device: required"):
        structure({"external_sensor_dbus_path_soc": "/Soc"}, SensorOptions, "control.sensor")
    with pytest.raises(ConfigError, match="starts with '/'"):
        structure(
            {"external_sensor_dbus_device": "d", "external_sensor_dbus_path_soc": "Soc"},
            SensorOptions,
            "control.sensor",
        )


tables = st.lists(
    st.tuples(st.floats(-1000, 1000), st.floats(-1000, 1000)),
    min_size=2,
    max_size=6,
    unique_by=lambda p: p[0],
)


@settings(max_examples=300, deadline=None)
@given(tables, st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_the_map_stays_within_the_measured_range(
    points: list[tuple[float, float]], value: float
) -> None:
    points.sort()
    assume(all(b[0] - a[0] >= 1e-6 for a, b in pairwise(points)))
    mapping = CorrectionMap([p[0] for p in points], [p[1] for p in points])
    out = mapping(value)
    ys = [p[1] for p in points]
    assert math.isfinite(out)
    assert round(min(ys), 3) - 1e-9 <= out <= round(max(ys), 3) + 1e-9
