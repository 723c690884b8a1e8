"""Current average, time-to-go, time-to-SoC (§4.1, §4.2) and midpoint (§4.3)."""

from __future__ import annotations

from typing import Any

import pytest

from bmshost.capabilities import BASIC
from bmshost.control.derived import (
    SPECS,
    MidpointOptions,
    MidpointStage,
    TimeToGoOptions,
    TimeToGoStage,
    format_duration,
    format_time_to_soc,
    midpoint,
)
from bmshost.errors import ConfigError
from bmshost.model import Sample
from bmshost.options import structure
from bmshost.stage import StageContext, Step


def ttg_stage(options: TimeToGoOptions | None = None, control: Any = None) -> TimeToGoStage:
    ctx = StageContext(
        capabilities=BASIC, options=options or TimeToGoOptions(), control=control or {}, store={}
    )
    return TimeToGoStage(ctx)


def cycle(
    stage: TimeToGoStage,
    t: float,
    current: float | None,
    soc: float | None = 50.0,
    q: float = 280.0,
) -> Step:
    step = Step(t=t, sample=Sample(current=current), last_sample=None)
    step.derived.current = current
    step.derived.soc = soc
    step.notes["capacity_ah"] = q
    stage.step(step)
    return step


def test_worked_example_current_average() -> None:
    stage = ttg_stage()
    t = 0
    for _ in range(200):
        step = cycle(stage, t, -10.0)
        t += 1
    for _ in range(100):
        step = cycle(stage, t, 5.0)
        t += 1
    assert step.derived.current_avg == -5.0
    assert cycle(stage, t, 5.0).derived.current_avg == -4.95


def test_average_is_time_based_at_other_poll_intervals() -> None:
    stage = ttg_stage()
    for t in range(0, 600, 5):  # 5 s poll: the last 300 s are 60 samples
        step = cycle(stage, t, -10.0 if t < 400 else 2.0)
    # window (295, 595]: t = 300..395 (20 x -10 A) and 400..595 (40 x 2 A)
    assert step.derived.current_avg == round((20 * -10 + 40 * 2) / 60, 2)


def test_offline_cycles_publish_no_average_but_keep_the_window() -> None:
    stage = ttg_stage()
    cycle(stage, 0, -10.0)
    assert cycle(stage, 1, None).derived.current_avg is None
    assert cycle(stage, 2, -20.0).derived.current_avg == -15.0


def test_worked_example_time_to_go_and_time_to_soc() -> None:
    stage = ttg_stage(TimeToGoOptions(time_to_soc_points=[50, 90]))
    step = cycle(stage, 0, -14.0, soc=80.0, q=280.0)
    assert step.derived.time_to_go == 43200  # 12 h to the 20 % low-SoC warning level
    assert step.derived.time_to_soc == {50: 21600}  # 90 % is moving away: no value
    assert format_duration(43200) == "12h"
    assert format_time_to_soc(21600, 1) == 21600
    assert format_time_to_soc(21600, 2) == "6h"
    assert format_time_to_soc(21600, 3) == "21600 [6h]"
    assert format_time_to_soc(None, 3) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (43200, "12h"),
        (3725, "1h 2m"),
        (90061, "1d 1h"),
        (59, "59s"),
        (-3725, "-1h 2m"),
        (86405, "1d"),
        (0, "0s"),
    ],
)
def test_duration_text(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_charging_targets_100_and_the_soc_low_warning_comes_from_the_alarms_section() -> None:
    class Alarms:
        soc_low_warning = 30.0

    charging = cycle(ttg_stage(), 0, 28.0, soc=50.0, q=280.0)
    assert charging.derived.time_to_go == 50 / (28 / 2.8) * 3600
    discharging = cycle(ttg_stage(control={"alarms": Alarms()}), 0, -28.0, soc=50.0, q=280.0)
    assert discharging.derived.time_to_go == 20 / (28 / 2.8) * 3600


def test_no_time_to_go_below_a_tenth_of_an_amp_or_without_inputs() -> None:
    assert cycle(ttg_stage(), 0, -0.05).derived.time_to_go is None
    assert cycle(ttg_stage(), 0, -10.0, soc=None).derived.time_to_go is None
    assert cycle(ttg_stage(), 0, 0.0).derived.time_to_go is None
    assert cycle(ttg_stage(), 0, -10.0, soc=20.0).derived.time_to_go is None  # already at target
    assert (
        cycle(ttg_stage(TimeToGoOptions(time_to_go_enable=False)), 0, -10.0).derived.time_to_go
        is None
    )


def test_values_are_recomputed_only_every_interval() -> None:
    stage = ttg_stage(TimeToGoOptions(time_to_soc_recalculate_every=60))
    first = cycle(stage, 0, -14.0, soc=80.0).derived.time_to_go
    assert cycle(stage, 30, -14.0, soc=70.0).derived.time_to_go == first
    later = cycle(stage, 60, -14.0, soc=70.0).derived.time_to_go
    assert later is not None and first is not None and later < first


def test_inputs_arriving_late_are_used_at_once() -> None:
    stage = ttg_stage()
    assert cycle(stage, 0, -14.0, soc=None).derived.time_to_go is None
    assert cycle(stage, 1, -14.0, soc=80.0).derived.time_to_go is not None


def test_ess_limit_replaces_the_discharge_target() -> None:
    stage = ttg_stage()
    assert stage.command("ess_soc_limit", 50.0)
    assert cycle(stage, 0, -14.0, soc=80.0).derived.time_to_go == 21600
    assert not stage.command("ess_soc_limit", 150)
    assert not stage.command("ess_soc_limit", "10")
    assert stage.command("ess_soc_limit", None)
    assert not stage.command("other", 1)


def test_time_to_soc_points_work_without_time_to_go() -> None:
    stage = ttg_stage(TimeToGoOptions(time_to_go_enable=False, time_to_soc_points=[100]))
    step = cycle(stage, 0, 28.0, soc=50.0)
    assert step.derived.time_to_go is None and step.derived.time_to_soc == {100: 18000}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"time_to_soc_points": [101]}, "SoC points are 0 to 100"),
        ({"time_to_soc_value_type": 4}, "control.time_to_go"),
        ({"time_to_soc_recalculate_every": 2}, "control.time_to_go"),
    ],
)
def test_bad_time_to_go_options(table: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        structure(table, TimeToGoOptions, "control.time_to_go")
    assert expected in str(info.value)


def test_worked_examples_midpoint() -> None:
    sixteen = midpoint([3.30] * 8 + [3.32] * 8)
    assert sixteen is not None
    assert sixteen[0] == pytest.approx(26.40) and round(sixteen[1], 3) == 0.302
    fifteen = midpoint([3.30] * 7 + [3.31] + [3.32] * 7)
    assert fifteen is not None
    assert fifteen[0] == pytest.approx(24.755) and round(fifteen[1], 3) == 0.302
    assert midpoint([3.3] * 3) is None
    assert midpoint([3.3, 0.0, 3.3, 3.3]) is None


def test_midpoint_stage_and_predicate() -> None:
    stage = MidpointStage(
        StageContext(
            capabilities=BASIC, options=MidpointOptions(midpoint_enable=True), control={}, store={}
        )
    )
    step = Step(t=0, sample=Sample(cell_voltages=[3.30] * 8 + [3.32] * 8), last_sample=None)
    stage.step(step)
    assert (step.derived.midpoint_voltage, step.derived.midpoint_deviation) == (26.4, 0.302)
    offline = Step(t=1, sample=None, last_sample=None)
    stage.step(offline)
    assert offline.derived.midpoint_voltage is None
    spec = next(s for s in SPECS if s.name == "midpoint")
    assert spec.predicate is not None
    assert spec.predicate(BASIC, MidpointOptions())[0] is False
    assert spec.predicate(BASIC, MidpointOptions(midpoint_enable=True))[0] is True
