"""Option classes of the limit stages: ``[control.cvl]``, ``[control.current_limits]``,
``[control.disconnect]`` and ``[control.limits]``.

Field names are the reference driver's option names in lower snake case, with its defaults, so
``bmshost config import-ini`` can map a ``config.ini`` key to the section holding a field of that
name. Options without a reference counterpart (the disconnect safe state, the hard bounds) are
marked as such. Each class validates its own fields; checks that span sections (a charge table
that could never let the pack reach ``max_cell_voltage``) are in ``crosscheck.py``.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

from bmshost.control.tables import fraction_problems, table_problems

_ge0 = v.ge(0.0)
_gt0 = v.gt(0.0)
_cell_volts = v.and_(v.gt(0.0), v.le(10.0))  # no lithium chemistry comes near 10 V per cell


def _finite(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{attribute.name}: must be a finite number")


def _one_of(*choices: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name}: must be one of {', '.join(map(str, choices))}, not {value}"
            )

    return check


def _table(x_field: str) -> Any:
    """Validator for a fractions list: checks it together with its breakpoints field."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: list[float]) -> None:
        xs = getattr(instance, x_field)
        problems = table_problems(x_field, xs, attribute.name, value)
        problems += fraction_problems(attribute.name, value)
        if problems:
            raise ValueError("; ".join(problems))

    return check


@attrs.define(slots=True, kw_only=True)
class CvlOptions:
    """``[control.cvl]``: charge voltage limit, cell voltages, SoC-reset voltage, voltage drop."""

    max_cell_voltage: float = attrs.field(default=3.45, validator=_cell_volts)
    min_cell_voltage: float = attrs.field(default=2.9, validator=_cell_volts)
    float_cell_voltage: float = attrs.field(default=3.375, validator=_cell_volts)
    soc_reset_cell_voltage: float = attrs.field(default=3.65, validator=_cell_volts)
    # None (the reference's empty value) disables the periodic SoC-reset charge; 0 is "every time"
    soc_reset_after_days: float | None = attrs.field(default=None, validator=v.optional(_ge0))
    cvcm_enable: bool = True
    switch_to_float_wait_for_sec: float = attrs.field(
        default=900.0, validator=v.and_(_ge0, _finite)
    )
    switch_to_float_cell_voltage_diff: float = attrs.field(default=0.010, validator=_ge0)
    switch_to_float_cell_voltage_deviation: float = attrs.field(default=0.003, validator=_ge0)
    switch_to_bulk_soc_threshold: float = attrs.field(
        default=80.0, validator=v.and_(_ge0, v.le(100.0))
    )
    switch_to_bulk_cell_voltage_diff: float = attrs.field(default=0.080, validator=_ge0)
    cvl_controller_mode: int = attrs.field(default=1, validator=_one_of(0, 1, 2, 3))
    cvl_icontroller_factor: float = attrs.field(default=0.2, validator=v.and_(_ge0, v.le(10.0)))
    cvl_recovery_hold_sec: float = attrs.field(default=60.0, validator=v.and_(_ge0, _finite))
    cvl_recovery_rate_v_per_sec: float = attrs.field(default=0.001, validator=v.and_(_ge0, _finite))
    voltage_drop: float = attrs.field(default=0.0, validator=v.and_(_ge0, v.le(5.0)))
    # take the BMS's own charge voltage limit into account (as an extra upper bound, see docs)
    use_bms_dvcc_values: bool = False
    # not in the reference: fixed there at 1 mV/s
    float_transition_rate_v_per_sec: float = attrs.field(default=0.001, validator=_gt0)

    def __attrs_post_init__(self) -> None:
        if not self.min_cell_voltage < self.float_cell_voltage <= self.max_cell_voltage:
            raise ValueError(
                "min_cell_voltage < float_cell_voltage <= max_cell_voltage is required "
                f"(got {self.min_cell_voltage}, {self.float_cell_voltage}, {self.max_cell_voltage})"
            )
        if (
            self.soc_reset_after_days is not None
            and self.soc_reset_cell_voltage < self.max_cell_voltage
        ):
            raise ValueError("soc_reset_cell_voltage must not be below max_cell_voltage")


@attrs.define(slots=True, kw_only=True)
class CurrentLimitsOptions:
    """``[control.current_limits]``: CCL/DCL maxima, lookup tables, recovery hold and ramp."""

    max_battery_charge_current: float = attrs.field(
        default=50.0, validator=v.and_(_ge0, v.le(10000.0))
    )
    max_battery_discharge_current: float = attrs.field(
        default=60.0, validator=v.and_(_ge0, v.le(10000.0))
    )
    charge_mode: int = attrs.field(default=1, validator=_one_of(1, 2))  # 1 linear, 2 step
    # Accepted for compatibility; reductions are always applied at once here (docs/control.md).
    cvl_recalculation_every: float = attrs.field(default=60.0, validator=_ge0)
    cvl_recalculation_on_max_percentage_change: float = attrs.field(default=33.0, validator=_ge0)

    cccm_cv_enable: bool = True
    dccm_cv_enable: bool = True
    cell_voltages_while_charging: list[float] = attrs.field(
        factory=lambda: [3.500, 3.450, 3.425, 3.400, 3.375]
    )
    max_charge_current_cv_fraction: list[float] = attrs.field(
        factory=lambda: [0.000, 0.005, 0.050, 0.250, 1.000],
        validator=_table("cell_voltages_while_charging"),
    )
    cell_voltages_while_discharging: list[float] = attrs.field(
        factory=lambda: [2.800, 2.900, 3.000, 3.100, 3.190]
    )
    max_discharge_current_cv_fraction: list[float] = attrs.field(
        factory=lambda: [0.000, 0.005, 0.050, 0.250, 1.000],
        validator=_table("cell_voltages_while_discharging"),
    )

    cccm_t_enable: bool = True
    dccm_t_enable: bool = True
    temperatures_while_charging: list[float] = attrs.field(
        factory=lambda: [0, 2, 5, 10, 40, 45, 50, 55]
    )
    max_charge_current_t_fraction: list[float] = attrs.field(
        factory=lambda: [0.00, 0.25, 0.50, 1.00, 1.00, 0.50, 0.25, 0.00],
        validator=_table("temperatures_while_charging"),
    )
    temperatures_while_discharging: list[float] = attrs.field(
        factory=lambda: [-10, 0, 5, 10, 40, 45, 50, 55]
    )
    max_discharge_current_t_fraction: list[float] = attrs.field(
        factory=lambda: [0.00, 0.25, 0.50, 1.00, 1.00, 0.50, 0.25, 0.00],
        validator=_table("temperatures_while_discharging"),
    )

    cccm_t_mosfet_enable: bool = True
    dccm_t_mosfet_enable: bool = True
    mosfet_temperatures_while_charging: list[float] = attrs.field(factory=lambda: [70, 80, 90])
    max_charge_current_t_mosfet_fraction: list[float] = attrs.field(
        factory=lambda: [1.00, 0.25, 0.00], validator=_table("mosfet_temperatures_while_charging")
    )
    mosfet_temperatures_while_discharging: list[float] = attrs.field(factory=lambda: [70, 80, 90])
    max_discharge_current_t_mosfet_fraction: list[float] = attrs.field(
        factory=lambda: [1.00, 0.25, 0.00],
        validator=_table("mosfet_temperatures_while_discharging"),
    )

    cccm_soc_enable: bool = False
    dccm_soc_enable: bool = False
    soc_while_charging: list[float] = attrs.field(factory=lambda: [98, 95, 90, 85])
    max_charge_current_soc_fraction: list[float] = attrs.field(
        factory=lambda: [0.10, 0.20, 0.50, 1.00], validator=_table("soc_while_charging")
    )
    soc_while_discharging: list[float] = attrs.field(factory=lambda: [5, 10, 15, 20])
    max_discharge_current_soc_fraction: list[float] = attrs.field(
        factory=lambda: [0.10, 0.20, 0.50, 1.00], validator=_table("soc_while_discharging")
    )

    charge_current_recovery_threshold_percent: float = attrs.field(
        default=0.015, validator=v.and_(_ge0, v.le(1.0))
    )
    discharge_current_recovery_threshold_percent: float = attrs.field(
        default=0.015, validator=v.and_(_ge0, v.le(1.0))
    )
    ccl_recovery_hold_sec: float = attrs.field(default=30.0, validator=v.and_(_ge0, _finite))
    ccl_recovery_rate_a_per_sec: float = attrs.field(default=5.0, validator=v.and_(_ge0, _finite))
    dcl_recovery_hold_sec: float = attrs.field(default=30.0, validator=v.and_(_ge0, _finite))
    dcl_recovery_rate_a_per_sec: float = attrs.field(default=5.0, validator=v.and_(_ge0, _finite))


@attrs.define(slots=True, kw_only=True)
class DisconnectOptions:
    """``[control.disconnect]``: what the limits do while the BMS is silent.

    Safe by default: after ``timeout_sec`` without an answer CCL = DCL = 0 and the cable alarm is
    raised. ``keep_discharging`` keeps the last DCL instead; ``block_on_disconnect = false`` keeps
    the last limits up to ``block_on_disconnect_timeout_minutes`` while the last known cells were
    inside the voltage window (the reference's behaviour, off by default here).
    """

    timeout_sec: float = attrs.field(
        default=60.0, validator=v.and_(_ge0, v.le(86400.0))
    )  # not in the reference
    keep_discharging: bool = False  # not in the reference
    block_on_disconnect: bool = True  # reference default False; see docs/control.md
    block_on_disconnect_timeout_minutes: float = attrs.field(
        default=30.0, validator=v.and_(_ge0, v.le(1440.0))
    )
    block_on_disconnect_voltage_min: float = attrs.field(default=3.225, validator=_cell_volts)
    block_on_disconnect_voltage_max: float = attrs.field(default=3.375, validator=_cell_volts)
    bms_cable_alarm: bool = True

    def __attrs_post_init__(self) -> None:
        if self.block_on_disconnect_voltage_min >= self.block_on_disconnect_voltage_max:
            raise ValueError(
                "block_on_disconnect_voltage_min must be below block_on_disconnect_voltage_max"
            )


@attrs.define(slots=True, kw_only=True)
class LimitsOptions:
    """``[control.limits]``: hard bounds of the final clamp (no reference counterpart).

    ``None`` derives the bound from the other sections: the highest allowed cell voltage
    (``max_cell_voltage``, or ``soc_reset_cell_voltage`` when SoC reset is on) × cells +
    ``voltage_drop``; the configured maximum currents; the zero-current breakpoints of the cell
    voltage tables as protection voltages.
    """

    max_charge_voltage: float | None = attrs.field(
        default=None, validator=v.optional(_gt0)
    )  # V, pack
    min_charge_voltage: float | None = attrs.field(
        default=None, validator=v.optional(_ge0)
    )  # V, pack
    max_charge_current: float | None = attrs.field(default=None, validator=v.optional(_ge0))  # A
    max_discharge_current: float | None = attrs.field(default=None, validator=v.optional(_ge0))  # A
    cell_voltage_high_cutoff: float | None = attrs.field(
        default=None, validator=v.optional(_cell_volts)
    )
    cell_voltage_low_cutoff: float | None = attrs.field(
        default=None, validator=v.optional(_cell_volts)
    )

    def __attrs_post_init__(self) -> None:
        lo, hi = self.min_charge_voltage, self.max_charge_voltage
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_charge_voltage must not be above max_charge_voltage")
        lo, hi = self.cell_voltage_low_cutoff, self.cell_voltage_high_cutoff
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError("cell_voltage_low_cutoff must be below cell_voltage_high_cutoff")
