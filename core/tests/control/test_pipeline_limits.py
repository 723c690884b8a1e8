"""Pipeline assembly, explain, commands, persistence, failure isolation and the final clamp."""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import pytest

from bmshost.capabilities import BASIC, Capability
from bmshost.control import limit_options
from bmshost.control.pipeline import Pipeline, bind_control, build_pipeline
from bmshost.control.registration import STAGE_MODULES, register_stages
from bmshost.control_replay import explain
from bmshost.errors import ConfigError
from bmshost.model import Sample
from bmshost.registry import StageRegistry
from bmshost.stage import Stage, StageSpec, Step

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


def limit_specs() -> list[StageSpec]:
    registry = StageRegistry()
    register_stages(registry)
    return [s for s in registry.ordered() if s.name in LIMIT_STAGES]


def make(
    raw: dict[str, Any] | None = None,
    caps: frozenset[Capability] = BASIC,
    extra: list[StageSpec] | None = None,
) -> Pipeline:
    specs = limit_specs()
    return build_pipeline(
        [*specs, *(extra or [])], caps, bind_control(specs, raw or {}), {}, "bat1"
    )


def sample(**kw: Any) -> Sample:
    kw.setdefault("cell_voltages", [3.30] * 16)
    kw.setdefault("temperatures", [25.0])
    return Sample(**kw)


def test_registration_bands_sections_and_option_names() -> None:
    specs = {s.name: s for s in limit_specs()}
    assert set(specs) == LIMIT_STAGES
    assert list(STAGE_MODULES) == sorted(STAGE_MODULES)
    for spec in specs.values():
        assert (
            spec.order in range(200, 300)
            or spec.order in range(300, 400)
            or spec.order
            in (
                *range(400, 500),
                900,
            )
        )
        assert spec.options is not None and spec.description
        for field in attrs.fields(spec.options):
            assert field.name == field.name.lower()
    assert specs["cvl"].config_section == "cvl"
    assert specs["current_limits"].config_section == "current_limits"
    assert specs["disconnect"].config_section == "disconnect"
    assert specs["clamp"].config_section == "limits" and specs["clamp"].order == 900


def test_reference_option_names_and_defaults() -> None:
    cvl = limit_options.CvlOptions()
    cur = limit_options.CurrentLimitsOptions()
    assert (cvl.max_cell_voltage, cvl.min_cell_voltage, cvl.float_cell_voltage) == (
        3.45,
        2.9,
        3.375,
    )
    assert cvl.switch_to_float_wait_for_sec == 900 and cvl.cvl_controller_mode == 1
    assert (cur.max_battery_charge_current, cur.max_battery_discharge_current) == (50.0, 60.0)
    assert (cur.ccl_recovery_hold_sec, cur.ccl_recovery_rate_a_per_sec) == (30, 5)
    assert limit_options.DisconnectOptions().timeout_sec == 60


def test_explain_follows_capabilities_and_options() -> None:
    rows = {name: (inc, why) for name, inc, why in make().explain()}
    assert rows["current_mosfet_temperature"] == (
        False,
        "the BMS does not report mosfet temperature",
    )
    assert rows["current_bms_limits"][0] is False
    assert rows["current_soc"] == (False, "cccm_soc_enable and dccm_soc_enable are off")
    assert rows["clamp"][0] is True
    caps = BASIC | {Capability.MOSFET_TEMPERATURE, Capability.BMS_CURRENT_LIMITS}
    p = make({"current_limits": {"cccm_soc_enable": True}}, caps)
    rows = {name: (inc, why) for name, inc, why in p.explain()}
    assert rows["current_mosfet_temperature"][0] and rows["current_bms_limits"][0]
    assert rows["current_soc"] == (True, "limits by state of charge (cccm_soc_enable)")
    assert [s.name for s in p.stages][-1] == "clamp"
    text = explain(p)
    assert text.splitlines()[0] == "bat1: control stages (in run order)"
    assert "  + current_soc" in text and "  - " not in text.split("current_soc")[1].splitlines()[0]


def test_absent_sections_get_defaults() -> None:
    specs = limit_specs()
    p = build_pipeline(specs, BASIC, {}, {}, "x")
    assert p.run(0.0, sample()).limits.ccl == 50.0


def test_bind_control_reports_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        bind_control(
            limit_specs(), {"cvl": {"max_cell_voltage": "high"}, "nope": {}, "limits": {"x": 1}}
        )
    problems = info.value.problems
    assert "control.cvl.max_cell_voltage: expected a number, got 'high'" in problems
    assert any(p.startswith("control.nope: unknown control section") for p in problems)
    assert "control.limits.x: unknown key" in problems


def test_state_survives_in_the_store() -> None:
    store: dict[str, Any] = {}
    specs = limit_specs()
    control = bind_control(specs, {"cvl": {"switch_to_float_wait_for_sec": 0}})
    p = build_pipeline(specs, BASIC, control, store, "x")
    full = sample(cell_voltages=[3.46] * 16)
    p.run(0.0, full)
    p.run(1.0, full)
    assert store["cvl"] == {"allow_max_voltage": False}
    again = build_pipeline(specs, BASIC, control, store, "x")
    assert again.run(2.0, full).limits.charge_mode.startswith("Float")


def test_command_forwarding() -> None:
    p = make()
    assert p.command("no_such_command", 1) is False


class Broken(Stage):
    name = "broken"

    def step(self, step: Step) -> None:
        raise RuntimeError("bug in a plugin")


class Rogue(Stage):
    """A plugin stage that tries to publish unsafe values after the built-in stages."""

    name = "rogue"

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def step(self, step: Step) -> None:
        for key, value in self.values.items():
            setattr(step.limits, key, value)


def test_a_failing_stage_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    spec = StageSpec(name="broken", order=250, factory=lambda ctx: Broken())
    p = make(extra=[spec])
    with caplog.at_level(logging.ERROR, "bmshost.control"):
        for t in range(5):
            step = p.run(float(t), sample())
    assert step.limits.ccl == 50.0 and step.notes["stage_errors"] == ["broken"]
    assert sum("broken" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_clamp_bounds_a_rogue_stage() -> None:
    rogue = Rogue({"cvl": 99.0, "ccl": 1000.0, "dcl": math.nan})
    p = make(extra=[StageSpec(name="rogue", order=500, factory=lambda ctx: rogue)])
    step = p.run(0.0, sample())
    assert (step.limits.cvl, step.limits.cvl_set_by) == (55.2, "clamp")
    assert (step.limits.ccl, step.limits.ccl_set_by) == (50.0, "clamp")
    assert step.limits.charge_limitation == "Max Battery Charge Current"
    assert (step.limits.dcl, step.limits.discharge_limitation) == (0.0, "Invalid Value")
    rogue.values = {"cvl": 10.0, "ccl": -5.0}
    step = p.run(1.0, sample())
    assert step.limits.cvl == 46.4 and step.limits.ccl == 0.0
    rogue.values = {"cvl": math.inf}
    assert p.run(2.0, sample()).limits.cvl == 46.4  # the previous value, never inf


def test_clamp_hard_bounds_from_options() -> None:
    raw = {
        "limits": {
            "max_charge_current": 20.0,
            "max_discharge_current": 30.0,
            "max_charge_voltage": 54.0,
        }
    }
    step = make(raw).run(0.0, sample())
    assert (step.limits.ccl, step.limits.dcl, step.limits.cvl) == (20.0, 30.0, 54.0)
    with pytest.raises(ConfigError, match="min_charge_voltage must not be above"):
        make({"limits": {"min_charge_voltage": 60.0, "max_charge_voltage": 50.0}})


def test_protection_cutoffs_apply_even_with_tables_off() -> None:
    raw = {"current_limits": {"cccm_cv_enable": False, "dccm_cv_enable": False}}
    p = make(raw)
    step = p.run(0.0, sample(cell_voltages=[3.30] * 15 + [3.51]))
    assert (step.limits.ccl, step.limits.charge_limitation, step.limits.ccl_set_by) == (
        0.0,
        "Cell Voltage",
        "clamp",
    )
    step = p.run(1.0, sample(cell_voltages=[3.30] * 15 + [2.79]))
    assert (step.limits.dcl, step.limits.discharge_limitation) == (0.0, "Cell Voltage")


def test_no_cell_data_means_no_charging() -> None:
    step = make().run(0.0, Sample(voltage=52.0, soc=50.0))
    assert step.limits.cvl is None
    assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "No Cell Data")
    assert step.limits.dcl == 60.0


def test_implausible_cell_readings_are_ignored() -> None:
    cells = [3.30] * 15 + [7.5]  # above 2 × max_cell_voltage: a glitch, not a cell
    step = make().run(0.0, sample(cell_voltages=cells))
    assert step.limits.ccl == 50.0
    assert step.limits.cvl == 51.75  # 15 plausible cells × 3.45 V
