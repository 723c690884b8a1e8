"""Battery temperature: calibration and sensor selection (spec §4.5)."""

from __future__ import annotations

from typing import Any

import pytest

from bmshost.capabilities import BASIC
from bmshost.control.temperature import TemperatureOptions, TemperatureStage
from bmshost.errors import ConfigError
from bmshost.model import Sample
from bmshost.options import structure
from bmshost.stage import StageContext, Step


def run(options: TemperatureOptions, sample: Sample | None) -> Step:
    stage = TemperatureStage(
        StageContext(capabilities=BASIC, options=options, control={}, store={})
    )
    step = Step(t=0.0, sample=sample, last_sample=sample)
    stage.step(step)
    return step


def test_worked_example_calibration() -> None:
    step = run(TemperatureOptions(temperature_1_adjust=[-1.5, 1.02]), Sample(temperatures=[25.0]))
    assert step.sample is not None and step.sample.temperatures is not None
    assert step.sample.temperatures[0] == pytest.approx(24.0)
    assert step.derived.battery_temperature == 24.0


def test_worked_example_selection() -> None:
    sample = Sample(temperatures=[20.0, 24.0, None, None])  # type: ignore[list-item]
    step = run(TemperatureOptions(), sample)
    assert step.derived.battery_temperature == 22.0
    assert (step.derived.min_temperature, step.derived.min_temperature_id) == (20.0, "Temp 1")
    assert (step.derived.max_temperature, step.derived.max_temperature_id) == (24.0, "Temp 2")
    only_two = run(TemperatureOptions(temperature_source_battery=[2]), sample)
    assert (only_two.derived.battery_temperature, only_two.derived.min_temperature) == (24.0, 24.0)
    assert only_two.derived.max_temperature == 24.0


def test_ties_lower_number_holds_min_higher_number_holds_max() -> None:
    opts = TemperatureOptions(temperature_1_name="top", temperature_3_name="bottom")
    step = run(opts, Sample(temperatures=[21.0, 21.0, 21.0]))
    assert step.derived.min_temperature_id == "top"
    assert step.derived.max_temperature_id == "bottom"


def test_mean_is_rounded_to_a_tenth() -> None:
    assert (
        run(
            TemperatureOptions(), Sample(temperatures=[20.0, 20.1, 20.1])
        ).derived.battery_temperature
        == 20.1
    )


def test_calibration_never_compounds_and_leaves_the_driver_sample_alone() -> None:
    opts = TemperatureOptions(temperature_2_adjust=[1.0, 1.0], temperature_mos_adjust=[-2.0, 1.0])
    stage = TemperatureStage(StageContext(capabilities=BASIC, options=opts, control={}, store={}))
    raw = Sample(temperatures=[10.0, 10.0], mosfet_temperature=40.0)
    for t in range(3):  # the same (unrefreshed) reading three cycles in a row
        step = Step(t=float(t), sample=raw, last_sample=raw)
        stage.step(step)
        assert step.sample is not None
        assert step.sample.temperatures == [10.0, 11.0]
        assert step.sample.mosfet_temperature == 38.0
        assert step.derived.max_temperature == 11.0
    assert raw.temperatures == [10.0, 10.0] and raw.mosfet_temperature == 40.0


def test_no_temperatures_no_values() -> None:
    assert run(TemperatureOptions(), Sample(temperatures=None)).derived.battery_temperature is None
    assert run(TemperatureOptions(), None).derived.battery_temperature is None
    none_selected = run(
        TemperatureOptions(temperature_source_battery=[3]), Sample(temperatures=[20.0])
    )
    assert none_selected.derived.battery_temperature is None


def test_identity_calibration_keeps_the_sample_object() -> None:
    sample = Sample(temperatures=[20.0])
    assert run(TemperatureOptions(), sample).sample is sample


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"temperature_source_battery": [5]}, "sensor numbers are 1 to 4"),
        ({"temperature_source_battery": []}, "at least one sensor"),
        ({"temperature_source_battery": [1, 1]}, "listed twice"),
        ({"temperature_1_adjust": [0, 1, 2]}, "temperature_1_adjust: expected [offset, slope]"),
        ({"temperature_mos_adjust": ["a", 1]}, "control.temperature.temperature_mos_adjust[0]"),
        ({"temperature_2_name": 3}, "control.temperature.temperature_2_name"),
    ],
)
def test_bad_options_are_config_errors(table: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        structure(table, TemperatureOptions, "control.temperature")
    assert expected in str(info.value)
