"""CCL/DCL stages (spec §2): one stage per limiting attribute, then ``current_limits`` combines.

Attribute stages (cell voltage, temperature, MOSFET temperature, SoC, BMS-reported maxima) each
put their candidate limits into ``step.notes``; the combining stage takes the smallest ("smallest
wins"), names the reasons in the reference vocabulary and applies the recovery hold and ramp.
The tables are sorted and scaled to amps once, when the stage is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bmshost.capabilities import Capability
from bmshost.control.cells import finite_or_none, sample_cell_stats
from bmshost.control.current_recovery import HELD, CurrentRecovery
from bmshost.control.limit_options import CurrentLimitsOptions, CvlOptions
from bmshost.control.tables import Table
from bmshost.model import Limits
from bmshost.stage import Stage, StageContext, StageSpec, Step

CHARGE_NOTES, DISCHARGE_NOTES = "ccl_candidates", "dcl_candidates"
BMS_CHARGE_MAX, BMS_DISCHARGE_MAX = "bms_charge_max", "bms_discharge_max"
MAX_CHARGE_TEXT = "Max Battery Charge Current"
MAX_DISCHARGE_TEXT = "Max Battery Discharge Current"
Candidate = tuple[float, str, str]  # amps, reason fragment, stage name

Lookup = Callable[[float], float]


def _lookup(table: Table, options: CurrentLimitsOptions) -> Lookup:
    return table.step if options.charge_mode == 2 else table.linear


def _add(step: Step, key: str, candidate: Candidate) -> None:
    notes = step.notes
    found = notes.get(key)
    if found is None:
        notes[key] = [candidate]
    else:
        found.append(candidate)


def _cell_ceiling(ctx: StageContext) -> float:
    cvl = ctx.control.get("cvl") if isinstance(ctx.control, dict) else None
    return 2.0 * (cvl.max_cell_voltage if isinstance(cvl, CvlOptions) else 3.45)


class _TableStage(Stage):
    """Common parts: two optional lookups (charge, discharge) scaled to the configured maxima."""

    reason = "?"

    def __init__(
        self,
        ctx: StageContext,
        charge: tuple[bool, list[float], list[float]],
        discharge: tuple[bool, list[float], list[float]],
    ) -> None:
        o: CurrentLimitsOptions = ctx.options
        self.charge: Lookup | None = None
        self.discharge: Lookup | None = None
        if charge[0]:
            self.charge = _lookup(
                Table.build(charge[1], charge[2], o.max_battery_charge_current), o
            )
        if discharge[0]:
            self.discharge = _lookup(
                Table.build(discharge[1], discharge[2], o.max_battery_discharge_current), o
            )


class CellVoltageStage(_TableStage):
    """CCL from the highest cell, DCL from the lowest cell."""

    name = "current_cell_voltage"
    reason = "Cell Voltage"

    def __init__(self, ctx: StageContext) -> None:
        o: CurrentLimitsOptions = ctx.options
        super().__init__(
            ctx,
            (o.cccm_cv_enable, o.cell_voltages_while_charging, o.max_charge_current_cv_fraction),
            (
                o.dccm_cv_enable,
                o.cell_voltages_while_discharging,
                o.max_discharge_current_cv_fraction,
            ),
        )
        self.ceiling = _cell_ceiling(ctx)

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return
        stats = sample_cell_stats(sample, self.ceiling)
        if stats is None:
            return  # unknown cells: no limit from this attribute (the reference's fallback too)
        if self.charge is not None:
            _add(step, CHARGE_NOTES, (self.charge(stats.highest), self.reason, self.name))
        if self.discharge is not None:
            _add(step, DISCHARGE_NOTES, (self.discharge(stats.lowest), self.reason, self.name))


def _temperature_range(step: Step) -> tuple[float, float] | None:
    """Lowest and highest battery temperature: the SoC/temperature stage's selection when it ran
    (``derived.min_temperature``/``max_temperature``), else the BMS's sensors."""
    derived = step.derived
    lo, hi = finite_or_none(derived.min_temperature), finite_or_none(derived.max_temperature)
    if lo is not None and hi is not None:
        return lo, hi
    sample = step.sample
    temps = sample.temperatures if sample is not None else None
    if not temps:
        return None
    good = [x for x in temps if finite_or_none(x) is not None]
    if not good:
        return None
    return min(good), max(good)


class TemperatureStage(_TableStage):
    """Evaluated at the coldest and the hottest sensor; the smaller current wins."""

    name = "current_temperature"
    reason = "Temp"

    def __init__(self, ctx: StageContext) -> None:
        o: CurrentLimitsOptions = ctx.options
        super().__init__(
            ctx,
            (o.cccm_t_enable, o.temperatures_while_charging, o.max_charge_current_t_fraction),
            (o.dccm_t_enable, o.temperatures_while_discharging, o.max_discharge_current_t_fraction),
        )

    def step(self, step: Step) -> None:
        if step.sample is None:
            return
        span = _temperature_range(step)
        if span is None:
            return
        lo, hi = span
        if self.charge is not None:
            a, b = self.charge(lo), self.charge(hi)
            _add(step, CHARGE_NOTES, (a if a < b else b, self.reason, self.name))
        if self.discharge is not None:
            a, b = self.discharge(lo), self.discharge(hi)
            _add(step, DISCHARGE_NOTES, (a if a < b else b, self.reason, self.name))


class MosfetTemperatureStage(_TableStage):
    name = "current_mosfet_temperature"
    reason = "MOSFET"

    def __init__(self, ctx: StageContext) -> None:
        o: CurrentLimitsOptions = ctx.options
        super().__init__(
            ctx,
            (
                o.cccm_t_mosfet_enable,
                o.mosfet_temperatures_while_charging,
                o.max_charge_current_t_mosfet_fraction,
            ),
            (
                o.dccm_t_mosfet_enable,
                o.mosfet_temperatures_while_discharging,
                o.max_discharge_current_t_mosfet_fraction,
            ),
        )

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return
        temp = finite_or_none(sample.mosfet_temperature)
        if temp is None:
            return
        if self.charge is not None:
            _add(step, CHARGE_NOTES, (self.charge(temp), self.reason, self.name))
        if self.discharge is not None:
            _add(step, DISCHARGE_NOTES, (self.discharge(temp), self.reason, self.name))


class SocStage(_TableStage):
    """Uses the effective SoC (``derived.soc`` from the SoC stage) when present, else the BMS's."""

    name = "current_soc"
    reason = "SoC"

    def __init__(self, ctx: StageContext) -> None:
        o: CurrentLimitsOptions = ctx.options
        super().__init__(
            ctx,
            (o.cccm_soc_enable, o.soc_while_charging, o.max_charge_current_soc_fraction),
            (o.dccm_soc_enable, o.soc_while_discharging, o.max_discharge_current_soc_fraction),
        )

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return
        soc = finite_or_none(step.derived.soc)
        if soc is None:
            soc = finite_or_none(sample.soc)
        if soc is None:
            return
        if self.charge is not None:
            _add(step, CHARGE_NOTES, (self.charge(soc), self.reason, self.name))
        if self.discharge is not None:
            _add(step, DISCHARGE_NOTES, (self.discharge(soc), self.reason, self.name))


class BmsLimitsStage(Stage):
    """The BMS's own current limits; they count only when lower than the configured maxima."""

    name = "current_bms_limits"

    def __init__(self, ctx: StageContext) -> None:
        pass

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return
        charge = finite_or_none(sample.bms_charge_current_limit)
        if charge is not None and charge >= 0.0:
            step.notes[BMS_CHARGE_MAX] = charge
        discharge = finite_or_none(sample.bms_discharge_current_limit)
        if discharge is not None and discharge >= 0.0:
            step.notes[BMS_DISCHARGE_MAX] = discharge


def _combine(
    cfg_max: float,
    max_text: str,
    bms_max: float | None,
    candidates: list[Candidate] | None,
    fet_off: bool,
) -> tuple[float, str, str]:
    """Smallest wins; the reason names every source that gives that smallest value."""
    cap = cfg_max
    best, reason, setter = cfg_max, max_text, CombineStage.name
    if bms_max is not None and bms_max < cap:
        cap = best = bms_max
        reason, setter = "BMS Settings", BmsLimitsStage.name
    if candidates:
        for value, name, stage in candidates:
            if value >= cap:
                continue  # not lower than the battery's maximum: not a limitation
            if value < best - 0.0005:
                best, reason, setter = value, name, stage
            elif value < best + 0.0005 and name not in reason:
                reason += ", " + name
                best = value if value < best else best
    if fet_off:
        if best <= 0.0:
            reason += ", BMS"
        else:
            reason, setter = "BMS", CombineStage.name
        best = 0.0
    return round(best, 3), reason, setter


class CombineStage(Stage):
    """Smallest-wins combination, FET state, recovery hold/ramp, reason texts."""

    name = "current_limits"

    def __init__(self, ctx: StageContext) -> None:
        o: CurrentLimitsOptions = ctx.options
        self.o = o
        self.charge = CurrentRecovery(
            o.max_battery_charge_current,
            o.charge_current_recovery_threshold_percent,
            o.ccl_recovery_hold_sec,
            o.ccl_recovery_rate_a_per_sec,
        )
        self.discharge = CurrentRecovery(
            o.max_battery_discharge_current,
            o.discharge_current_recovery_threshold_percent,
            o.dcl_recovery_hold_sec,
            o.dcl_recovery_rate_a_per_sec,
        )
        self.was_offline = False

    def _resync(self, previous: Limits | None) -> None:
        """Back from a silent BMS: continue from what was published (the safe state's 0 A), so the
        recovery hold and ramp apply instead of a jump."""
        if previous is None:
            return
        for ramp, value in ((self.charge, previous.ccl), (self.discharge, previous.dcl)):
            if value is not None and ramp.output is not None and value < ramp.output:
                ramp.force(value)

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            self.was_offline = True
            return
        notes = step.notes
        if self.was_offline:
            self.was_offline = False
            self._resync(notes.get("previous_limits"))
        o = self.o
        limits = step.limits
        t = step.t
        target, reason, setter = _combine(
            o.max_battery_charge_current,
            MAX_CHARGE_TEXT,
            notes.get(BMS_CHARGE_MAX),
            notes.get(CHARGE_NOTES),
            sample.charge_fet is False,
        )
        state = self.charge.update(t, target)
        limits.ccl = self.charge.output
        limits.charge_limitation = reason + " *" if state == HELD else reason
        limits.ccl_set_by = setter if state != HELD and limits.ccl == target else self.name

        target, reason, setter = _combine(
            o.max_battery_discharge_current,
            MAX_DISCHARGE_TEXT,
            notes.get(BMS_DISCHARGE_MAX),
            notes.get(DISCHARGE_NOTES),
            sample.discharge_fet is False,
        )
        state = self.discharge.update(t, target)
        limits.dcl = self.discharge.output
        limits.discharge_limitation = reason + " *" if state == HELD else reason
        limits.dcl_set_by = setter if state != HELD and limits.dcl == target else self.name


def _enabled(
    charge_flag: str, discharge_flag: str, what: str, needs: Capability | None = None
) -> Any:
    def predicate(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
        if needs is not None and needs not in capabilities:
            return False, f"the BMS does not report {needs.value.lower()}"
        on = [flag for flag in (charge_flag, discharge_flag) if getattr(options, flag, False)]
        if not on:
            return False, f"{charge_flag} and {discharge_flag} are off"
        return True, f"limits {what} ({', '.join(on)})"

    return predicate


def _bms_limits(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    if Capability.BMS_CURRENT_LIMITS in capabilities:
        return True, "the BMS reports its own CCL/DCL; a lower BMS value limits the current"
    return False, "the BMS does not report CCL/DCL"


def _always(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    return True, "combines the current limits (smallest wins), FET state, recovery hold and ramp"


def _spec(name: str, order: int, factory: Any, predicate: Any, description: str) -> StageSpec:
    return StageSpec(
        name=name,
        order=order,
        factory=factory,
        options=CurrentLimitsOptions,
        section="current_limits",
        predicate=predicate,
        description=description,
    )


SPECS: list[StageSpec] = [
    _spec(
        "current_cell_voltage",
        310,
        CellVoltageStage,
        _enabled(
            "cccm_cv_enable", "dccm_cv_enable", "CCL by the highest and DCL by the lowest cell"
        ),
        "CCL/DCL from the highest/lowest cell voltage",
    ),
    _spec(
        "current_temperature",
        320,
        TemperatureStage,
        _enabled(
            "cccm_t_enable",
            "dccm_t_enable",
            "by battery temperature",
            Capability.BATTERY_TEMPERATURE,
        ),
        "CCL/DCL from the battery temperature",
    ),
    _spec(
        "current_mosfet_temperature",
        330,
        MosfetTemperatureStage,
        _enabled(
            "cccm_t_mosfet_enable",
            "dccm_t_mosfet_enable",
            "by MOSFET temperature",
            Capability.MOSFET_TEMPERATURE,
        ),
        "CCL/DCL from the MOSFET temperature",
    ),
    _spec(
        "current_soc",
        340,
        SocStage,
        _enabled("cccm_soc_enable", "dccm_soc_enable", "by state of charge"),
        "CCL/DCL from the state of charge",
    ),
    _spec("current_bms_limits", 350, BmsLimitsStage, _bms_limits, "the BMS's own current limits"),
    _spec(
        "current_limits",
        390,
        CombineStage,
        _always,
        "smallest-wins combination, FET state, recovery hold and ramp",
    ),
]
