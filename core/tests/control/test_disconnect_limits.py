"""Spec §4.7 done safer: a silent BMS holds the last limits, then the safe state and cable alarm;
normal control resumes through the recovery ramp when data returns."""

from __future__ import annotations

from typing import Any

from bmshost.capabilities import BASIC
from bmshost.control.pipeline import Pipeline, bind_control, build_pipeline
from bmshost.control.registration import register_stages
from bmshost.model import Sample
from bmshost.registry import StageRegistry
from bmshost.stage import Step

LIMIT_STAGES = {
    "cvl",
    "current_cell_voltage",
    "current_temperature",
    "current_mosfet_temperature",
    "current_soc",
    "current_bms_limits",
    "current_limits",
    "disconnect",
    "clamp",
}


def make(raw: dict[str, Any] | None = None) -> Pipeline:
    registry = StageRegistry()
    register_stages(registry)
    specs = [s for s in registry.ordered() if s.name in LIMIT_STAGES]
    return build_pipeline(specs, BASIC, bind_control(specs, raw or {}), {}, "t")


def good(p: Pipeline, t: float, cell: float = 3.30, temp: float = 42.0) -> Step:
    return p.run(float(t), Sample(cell_voltages=[cell] * 16, temperatures=[temp], soc=60.0))


def silent(p: Pipeline, t: float) -> Step:
    return p.run(float(t), None)


def cable(step: Step) -> int | None:
    return (step.derived.alarms or {}).get("bms_cable")


def test_hold_then_safe_state_then_recovery_ramp() -> None:
    p = make()
    for t in range(10):
        last = good(p, t)
    held = last.limits.to_json_dict()
    assert held["ccl"] == 40.0 and held["dcl"] == 48.0  # limited by temperature (42 °C)
    for t in range(10, 70):  # elapsed 0 … 59 s: the last limits, not recomputed
        step = silent(p, t)
        assert step.limits.to_json_dict() == held, t
        assert cable(step) == 0
    step = silent(p, 70)  # elapsed 60 s
    assert (step.limits.ccl, step.limits.dcl) == (0.0, 0.0)
    assert step.limits.charge_limitation == "BMS Connection Lost"
    assert step.limits.ccl_set_by == "disconnect"
    assert step.limits.allow_to_charge is False and step.limits.allow_to_discharge is False
    assert step.limits.cvl == held["cvl"]
    assert cable(step) == 2
    for t in range(71, 200):
        assert silent(p, t).limits.ccl == 0.0
    # data returns: the alarm clears, limits come back through hold (30 s) and ramp (5 A/s)
    step = good(p, 200)
    assert cable(step) == 0
    assert (step.limits.ccl, step.limits.dcl) == (0.0, 0.0)
    assert step.limits.charge_limitation == "Temp *"
    assert good(p, 229).limits.ccl == 0.0
    assert good(p, 230).limits.ccl == 0.0  # ramp starts
    assert good(p, 231).limits.ccl == 5.0
    assert good(p, 238).limits.ccl == 40.0
    assert good(p, 238).limits.dcl == 40.0
    assert good(p, 240).limits.dcl == 48.0


def test_keep_discharging() -> None:
    p = make({"disconnect": {"keep_discharging": True}})
    good(p, 0)
    step = silent(p, 1)
    step = silent(p, 61)
    assert (step.limits.ccl, step.limits.dcl) == (0.0, 48.0)
    assert cable(step) == 2


def test_custom_timeout() -> None:
    p = make({"disconnect": {"timeout_sec": 5}})
    good(p, 0)
    assert silent(p, 1).limits.ccl == 40.0
    assert silent(p, 5).limits.ccl == 40.0
    assert silent(p, 6).limits.ccl == 0.0


def test_safe_window_keeps_limits_longer() -> None:
    p = make({"disconnect": {"block_on_disconnect": False}})
    good(p, 0)
    assert cable(silent(p, 1)) == 0
    step = silent(p, 61)
    assert step.limits.ccl == 40.0 and cable(step) == 1
    step = silent(p, 1800)
    assert step.limits.ccl == 40.0 and cable(step) == 1
    step = silent(p, 1801)  # 1800 s after the first failure
    assert (step.limits.ccl, step.limits.dcl, cable(step)) == (0.0, 0.0, 2)


def test_cells_outside_the_window_block_at_the_timeout() -> None:
    p = make({"disconnect": {"block_on_disconnect": False}})
    good(p, 0, cell=3.40)  # above block_on_disconnect_voltage_max 3.375
    assert silent(p, 1).limits.ccl is not None
    step = silent(p, 61)
    assert (step.limits.ccl, cable(step)) == (0.0, 2)


def test_cable_warning_can_be_switched_off_but_not_the_alarm() -> None:
    p = make({"disconnect": {"block_on_disconnect": False, "bms_cable_alarm": False}})
    good(p, 0)
    silent(p, 1)
    assert cable(silent(p, 100)) == 0
    assert cable(silent(p, 1801)) == 2


def test_silent_from_the_start() -> None:
    p = make()
    step = silent(p, 0)
    assert step.limits.ccl is None and step.limits.cvl is None  # nothing to publish yet
    step = silent(p, 60)
    assert (step.limits.ccl, step.limits.dcl) == (0.0, 0.0)
    assert step.limits.cvl is None
    assert cable(step) == 2


def test_intermittent_failures_do_not_accumulate() -> None:
    # [QUIRK] fixed: the reference keeps the first failure time across good reads < 60 s apart
    p = make()
    for cycle in range(10):
        start = cycle * 51
        good(p, start)
        for t in range(start + 1, start + 51):  # 50 s silent each time, 500 s in total
            step = silent(p, t)
            assert step.limits.ccl == 40.0 and cable(step) == 0


def test_cvl_not_recomputed_while_silent() -> None:
    p = make({"cvl": {"switch_to_float_wait_for_sec": 0}})
    good(p, 0, cell=3.46)
    good(p, 1, cell=3.46)  # float transition starts
    cvl = good(p, 2, cell=3.46).limits.cvl
    for t in range(3, 50):
        assert silent(p, t).limits.cvl == cvl
