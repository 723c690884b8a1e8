"""Worked examples of spec §2 (CCL/DCL): tables, combination, reasons, hold and ramp."""

from __future__ import annotations

from typing import Any

import pytest

from bmshost.capabilities import BASIC, Capability
from bmshost.control.limit_options import CurrentLimitsOptions
from bmshost.control.pipeline import Pipeline, bind_control, build_pipeline
from bmshost.control.registration import register_stages
from bmshost.control.tables import Table
from bmshost.errors import ConfigError
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
ALL_INPUTS = BASIC | {Capability.MOSFET_TEMPERATURE, Capability.BMS_CURRENT_LIMITS}


def limit_specs() -> list[Any]:
    registry = StageRegistry()
    register_stages(registry)
    return [s for s in registry.ordered() if s.name in LIMIT_STAGES]


def make(raw: dict[str, Any] | None = None, caps: frozenset[Capability] = ALL_INPUTS) -> Pipeline:
    specs = limit_specs()
    return build_pipeline(specs, caps, bind_control(specs, raw or {}), {}, "t")


def run(
    p: Pipeline, t: float, cells: list[float], temps: list[float] | None = None, **kw: Any
) -> Step:
    sample = Sample(
        cell_voltages=list(cells), temperatures=[25.0] if temps is None else temps, **kw
    )
    return p.run(float(t), sample)


def high(v: float) -> list[float]:
    return [3.30] * 15 + [v]


def low(v: float) -> list[float]:
    return [3.30] * 15 + [v]


OPTS = CurrentLimitsOptions()


def table(xs: list[float], ys: list[float], scale: float) -> Table:
    return Table.build(xs, ys, scale)


CHARGE_CV = table(OPTS.cell_voltages_while_charging, OPTS.max_charge_current_cv_fraction, 50)
DISCHARGE_CV = table(
    OPTS.cell_voltages_while_discharging, OPTS.max_discharge_current_cv_fraction, 60
)
CHARGE_T = table(OPTS.temperatures_while_charging, OPTS.max_charge_current_t_fraction, 50)
DISCHARGE_T = table(OPTS.temperatures_while_discharging, OPTS.max_discharge_current_t_fraction, 60)
CHARGE_MOS = table(
    OPTS.mosfet_temperatures_while_charging, OPTS.max_charge_current_t_mosfet_fraction, 50
)
DISCHARGE_MOS = table(
    OPTS.mosfet_temperatures_while_discharging, OPTS.max_discharge_current_t_mosfet_fraction, 60
)
CHARGE_SOC = table(OPTS.soc_while_charging, OPTS.max_charge_current_soc_fraction, 50)
DISCHARGE_SOC = table(OPTS.soc_while_discharging, OPTS.max_discharge_current_soc_fraction, 60)

# (table, inputs, linear values from the spec, step values of the one documented step rule)
CASES = [
    (
        CHARGE_CV,
        [3.375, 3.38, 3.39, 3.40, 3.41, 3.424, 3.425, 3.44, 3.45, 3.47, 3.50],
        [50, 42.5, 27.5, 12.5, 8.5, 2.9, 2.5, 1.15, 0.25, 0.15, 0],
        [50, 50, 50, 12.5, 12.5, 12.5, 2.5, 2.5, 0.25, 0.25, 0],
    ),
    (
        DISCHARGE_CV,
        [2.80, 2.85, 2.90, 2.95, 3.00, 3.05, 3.0999, 3.10, 3.15, 3.19],
        [0, 0.15, 0.3, 1.65, 3, 9, 14.988, 15, 40, 60],
        [0, 0.3, 0.3, 3, 3, 15, 15, 15, 60, 60],
    ),
    (
        CHARGE_T,
        [-5, 0, 1, 2, 3, 5, 7, 10, 25, 40, 42, 45, 47, 50, 52, 55],
        [0, 0, 6.25, 12.5, 16.667, 25, 35, 50, 50, 50, 40, 25, 20, 12.5, 7.5, 0],
        [0, 0, 12.5, 12.5, 25, 25, 50, 50, 50, 50, 50, 25, 25, 12.5, 12.5, 0],
    ),
    (
        DISCHARGE_T,
        [-5, 0, 1, 2, 3, 5, 7, 10, 25, 40, 42, 45, 47, 50, 52, 55],
        [7.5, 15, 18, 21, 24, 30, 42, 60, 60, 60, 48, 30, 24, 15, 9, 0],
        [15, 15, 30, 30, 30, 30, 60, 60, 60, 60, 60, 30, 30, 15, 15, 0],
    ),
    (
        CHARGE_MOS,
        [60, 70, 75, 80, 85, 90, 95],
        [50, 50, 31.25, 12.5, 6.25, 0, 0],
        [50, 50, 50, 12.5, 12.5, 0, 0],
    ),
    (
        DISCHARGE_MOS,
        [60, 70, 75, 80, 85, 90, 95],
        [60, 60, 37.5, 15, 7.5, 0, 0],
        [60, 60, 60, 15, 15, 0, 0],
    ),
    (
        CHARGE_SOC,
        [80, 85, 87, 90, 92.5, 95, 96, 98, 100],
        [50, 50, 40, 25, 17.5, 10, 8.333, 5, 5],
        [50, 50, 50, 25, 25, 10, 10, 5, 5],
    ),
    (
        DISCHARGE_SOC,
        [0, 5, 7, 10, 12, 15, 17, 20, 50],
        [6, 6, 8.4, 12, 19.2, 30, 42, 60, 60],
        [6, 6, 12, 12, 30, 30, 60, 60, 60],
    ),
]


@pytest.mark.parametrize(("tbl", "xs", "linear", "step"), CASES)
def test_table_values(tbl: Table, xs: list[float], linear: list[float], step: list[float]) -> None:
    assert [round(tbl.linear(x), 3) for x in xs] == pytest.approx(linear, abs=1e-3)
    assert [round(tbl.step(x), 3) for x in xs] == pytest.approx(step, abs=1e-3)


def test_temperature_uses_coldest_and_hottest_sensor() -> None:
    step = run(make(), 0, [3.30] * 16, temps=[3.0, 42.0])
    assert step.limits.ccl == pytest.approx(16.667, abs=1e-3)
    assert step.limits.dcl == 24.0
    assert step.limits.charge_limitation == "Temp"


def test_example_a_two_reasons_share_the_minimum() -> None:
    step = run(make(), 0, [3.40] + [3.30] * 15, temps=[50.0, 25.0])
    assert step.limits.ccl == 12.5
    assert step.limits.charge_limitation == "Cell Voltage, Temp"
    assert step.limits.dcl == 15.0
    assert step.limits.discharge_limitation == "Temp"


def test_example_b_bms_maximum_and_mosfet() -> None:
    step = run(
        make(), 0, high(3.41), temps=[42.0], mosfet_temperature=75.0, bms_charge_current_limit=40.0
    )
    assert step.limits.ccl == 8.5
    assert step.limits.charge_limitation == "Cell Voltage"
    assert step.limits.ccl_set_by == "current_cell_voltage"


def test_bms_maximum_lower_than_config_wins() -> None:
    step = run(
        make(), 0, [3.30] * 16, bms_charge_current_limit=40.0, bms_discharge_current_limit=0.0
    )
    assert (step.limits.ccl, step.limits.charge_limitation) == (40.0, "BMS Settings")
    assert (step.limits.dcl, step.limits.discharge_limitation) == (0.0, "BMS Settings")
    assert step.limits.allow_to_discharge is False


def test_bms_maximum_ignored_without_capability() -> None:
    step = run(make(caps=BASIC), 0, [3.30] * 16, bms_charge_current_limit=40.0)
    assert step.limits.ccl == 50.0


def test_example_c_charge_fet_off() -> None:
    step = run(make(), 0, [3.30] * 16, charge_fet=False, discharge_fet=True, current=3.0)
    assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "BMS")
    assert step.limits.allow_to_charge is False
    assert step.limits.allow_to_discharge is True


def test_unknown_fet_state_does_not_block() -> None:
    # the reference shows "not allowed" for a BMS that never reports its FETs
    step = run(make(), 0, [3.30] * 16)
    assert step.limits.allow_to_charge is True and step.limits.allow_to_discharge is True


def test_recovery_timeline_from_zero() -> None:
    p = make()
    assert run(p, 0, [3.30] * 16).limits.ccl == 50.0
    step = run(p, 1, high(3.50))
    assert (step.limits.ccl, step.limits.charge_limitation, step.limits.allow_to_charge) == (
        0.0,
        "Cell Voltage",
        False,
    )
    for t in range(2, 7):
        step = run(p, t, high(3.44))
        assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "Cell Voltage *")
    for t in range(7, 32):
        step = run(p, t, [3.30] * 16)
        assert (step.limits.ccl, step.limits.charge_limitation) == (
            0.0,
            "Max Battery Charge Current *",
        )
    step = run(p, 32, [3.30] * 16)
    assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "Max Battery Charge Current")
    assert step.limits.ccl_set_by == "current_limits"
    for t in range(33, 43):
        assert run(p, t, [3.30] * 16).limits.ccl == 5.0 * (t - 32)
    assert run(p, 42, [3.30] * 16).limits.ccl_set_by == "current_limits"


def test_recovery_timeline_from_partial_limit() -> None:
    p = make()
    run(p, 0, [3.30] * 16)
    assert run(p, 1, high(3.40)).limits.ccl == 12.5
    for t in range(2, 32):
        assert run(p, t, [3.30] * 16).limits.ccl == 12.5
    expected = {32: 12.5, 33: 17.5, 34: 22.5, 39: 47.5, 40: 50.0}
    for t in range(32, 41):
        step = run(p, t, [3.30] * 16)
        if t in expected:
            assert step.limits.ccl == expected[t], t


def test_below_recovery_threshold_stays_at_zero() -> None:
    p = make()
    run(p, 0, high(3.50))
    for t in range(1, 100):
        step = run(p, t, high(3.47))  # 0.15 A < 50 × 0.015
        assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "Cell Voltage *")


def test_reductions_are_immediate() -> None:
    # [DIVERGENCE] fixed: the reference delays reductions under 33 % for up to 60 s
    p = make()
    assert run(p, 0, [3.30] * 16).limits.ccl == 50.0
    step = run(p, 1, [3.30] * 16, temps=[42.0])
    assert (step.limits.ccl, step.limits.charge_limitation) == (40.0, "Temp")


def test_rate_zero_jumps_after_hold() -> None:
    p = make({"current_limits": {"ccl_recovery_rate_a_per_sec": 0}})
    run(p, 0, high(3.40))
    assert run(p, 29, [3.30] * 16).limits.ccl == 12.5
    assert run(p, 59, [3.30] * 16).limits.ccl == 50.0


def test_discharge_side_recovers_too() -> None:
    p = make()
    assert run(p, 0, low(2.80)).limits.dcl == 0.0
    assert run(p, 1, [3.30] * 16).limits.discharge_limitation == "Max Battery Discharge Current *"
    assert run(p, 31, [3.30] * 16).limits.dcl == 0.0
    assert run(p, 32, [3.30] * 16).limits.dcl == 5.0


def test_zero_maximum_charge_current_blocks_charging() -> None:
    p = make({"current_limits": {"max_battery_charge_current": 0}})
    for t in range(5):
        step = run(p, t, [3.30] * 16)
        assert step.limits.ccl == 0.0 and step.limits.allow_to_charge is False


def test_soc_limits_when_enabled() -> None:
    p = make({"current_limits": {"cccm_soc_enable": True, "dccm_soc_enable": True}})
    step = run(p, 0, [3.30] * 16, soc=96.0)
    assert step.limits.ccl == pytest.approx(8.333, abs=1e-3)
    assert step.limits.charge_limitation == "SoC"
    step = run(make({"current_limits": {"dccm_soc_enable": True}}), 0, [3.30] * 16, soc=7.0)
    assert step.limits.dcl == pytest.approx(8.4)


def test_step_mode_in_the_pipeline() -> None:
    step = run(make({"current_limits": {"charge_mode": 2}}), 0, high(3.41))
    assert step.limits.ccl == 12.5


def test_mosfet_stage_needs_the_capability() -> None:
    step = run(make(caps=BASIC), 0, [3.30] * 16, mosfet_temperature=95.0)
    assert step.limits.ccl == 50.0
    step = run(make(), 0, [3.30] * 16, mosfet_temperature=95.0)
    assert (step.limits.ccl, step.limits.charge_limitation) == (0.0, "MOSFET")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            {"cell_voltages_while_charging": [3.5, 3.3, 3.4, 3.45, 3.375]},
            "cell_voltages_while_charging: breakpoints are not monotonic",
        ),
        (
            {"temperatures_while_charging": [0, 2, 5]},
            "max_charge_current_t_fraction: has 8 entries",
        ),
        ({"max_charge_current_soc_fraction": [0.1, 0.2, 0.5, 0.9]}, "one entry must be 1.0"),
        ({"max_charge_current_cv_fraction": [0, 0.005, 0.05, 0.25, 1.5]}, "between 0 and 1"),
        ({"charge_mode": 3}, "charge_mode: must be one of 1, 2"),
        (
            {"ccl_recovery_hold_sec": "30"},
            "control.current_limits.ccl_recovery_hold_sec: expected a number",
        ),
        ({"max_battery_charge_current": -1}, "max_battery_charge_current"),
        ({"nonsense": 1}, "control.current_limits.nonsense: unknown key"),
    ],
)
def test_invalid_options_are_named(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        make({"current_limits": raw})
    assert needle in str(info.value)


def test_zero_amp_breakpoint_below_the_charge_target_is_an_error() -> None:
    raw = {"cell_voltages_while_charging": [3.45, 3.44, 3.425, 3.400, 3.375]}
    with pytest.raises(ConfigError, match="could never reach absorption"):
        make({"current_limits": raw})
    raw = {"cell_voltages_while_discharging": [2.95, 2.96, 3.0, 3.1, 3.19]}
    with pytest.raises(ConfigError, match="above min_cell_voltage"):
        make({"current_limits": raw})


def test_descending_and_ascending_tables_are_equivalent() -> None:
    asc = Table.build([3.375, 3.4, 3.425, 3.45, 3.5], [1.0, 0.25, 0.05, 0.005, 0.0], 50)
    assert asc == CHARGE_CV
