"""The final clamp (order 900): hard bounds on CVL/CCL/DCL that no stage, built-in or plugin, can
exceed, plus the protection cut-offs and the allow-to-charge/discharge flags.

Bounds come from ``[control.limits]``, or are derived from the other sections (see
``LimitsOptions``). A value that is missing or not a finite number after something was published
becomes the safe value (the previous CVL; 0 A), so sinks never see NaN or a gap.
"""

from __future__ import annotations

import math
from typing import Any

from bmshost.capabilities import Capability
from bmshost.control.cells import sample_cell_stats
from bmshost.control.currents import MAX_CHARGE_TEXT, MAX_DISCHARGE_TEXT
from bmshost.control.limit_options import CurrentLimitsOptions, CvlOptions, LimitsOptions
from bmshost.model import Limits
from bmshost.stage import Stage, StageContext, StageSpec, Step

CUTOFF_MARGIN = 0.05  # V above the highest allowed cell voltage when no table gives 0 A
NO_CVL_TEXT = "No Cell Data"
INVALID_TEXT = "Invalid Value"


def _zero_breakpoint(xs: list[float], fractions: list[float], highest: bool) -> float | None:
    zeros = [x for x, f in zip(xs, fractions, strict=True) if f == 0.0]
    if not zeros:
        return None
    return max(zeros) if highest else min(zeros)


def _section(control: Any, name: str, cls: type[Any]) -> Any:
    found = control.get(name) if isinstance(control, dict) else None
    return found if isinstance(found, cls) else cls()


def protection_voltages(
    cvl: CvlOptions, cur: CurrentLimitsOptions, lim: LimitsOptions
) -> tuple[float, float]:
    """(high, low) per-cell cut-offs: CCL is 0 at or above high, DCL is 0 at or below low."""
    high = lim.cell_voltage_high_cutoff
    if high is None:
        high = _zero_breakpoint(
            cur.cell_voltages_while_charging, cur.max_charge_current_cv_fraction, False
        )
    if high is None:
        top = cvl.max_cell_voltage
        if cvl.soc_reset_after_days is not None:
            top = max(top, cvl.soc_reset_cell_voltage)
        high = top + CUTOFF_MARGIN
    low = lim.cell_voltage_low_cutoff
    if low is None:
        low = _zero_breakpoint(
            cur.cell_voltages_while_discharging, cur.max_discharge_current_cv_fraction, True
        )
    if low is None:
        low = cvl.min_cell_voltage - 2 * CUTOFF_MARGIN
    return high, low


class ClampStage(Stage):
    name = "clamp"

    def __init__(self, ctx: StageContext) -> None:
        lim: LimitsOptions = (
            ctx.options if isinstance(ctx.options, LimitsOptions) else LimitsOptions()
        )
        cvl = _section(ctx.control, "cvl", CvlOptions)
        cur = _section(ctx.control, "current_limits", CurrentLimitsOptions)
        self.lim = lim
        self.max_ccl = (
            lim.max_charge_current
            if lim.max_charge_current is not None
            else cur.max_battery_charge_current
        )
        self.max_dcl = (
            lim.max_discharge_current
            if lim.max_discharge_current is not None
            else cur.max_battery_discharge_current
        )
        self.high_cutoff, self.low_cutoff = protection_voltages(cvl, cur, lim)
        top = cvl.max_cell_voltage
        if cvl.soc_reset_after_days is not None:
            top = max(top, cvl.soc_reset_cell_voltage)
        self.cell_top = top
        self.cell_bottom = cvl.min_cell_voltage
        self.drop = cvl.voltage_drop
        self.ceiling = 2.0 * cvl.max_cell_voltage
        self._n = 0
        self._cvl_hi: float | None = lim.max_charge_voltage
        self._cvl_lo: float | None = lim.min_charge_voltage
        self.published = False

    def _bounds_for(self, n: int) -> None:
        self._n = n
        lim = self.lim
        self._cvl_hi = (
            lim.max_charge_voltage
            if lim.max_charge_voltage is not None
            else round(self.cell_top * n + self.drop, 2)
        )
        self._cvl_lo = (
            lim.min_charge_voltage
            if lim.min_charge_voltage is not None
            else round(self.cell_bottom * n, 2)
        )

    def step(self, step: Step) -> None:
        limits = step.limits
        sample = step.sample
        stats = sample_cell_stats(sample, self.ceiling) if sample is not None else None
        if stats is not None and stats.count != self._n:
            self._bounds_for(stats.count)
        previous = step.notes.get("previous_limits")
        self._clamp_cvl(limits, previous)
        if limits.ccl is None and limits.dcl is None and not self.published:
            return  # nothing computed yet (no sample so far): nothing to publish
        self.published = True
        self._clamp_currents(limits)
        if stats is not None:
            if stats.highest >= self.high_cutoff and limits.ccl:
                limits.ccl, limits.charge_limitation, limits.ccl_set_by = (
                    0.0,
                    "Cell Voltage",
                    self.name,
                )
            if stats.lowest <= self.low_cutoff and limits.dcl:
                limits.dcl, limits.discharge_limitation, limits.dcl_set_by = (
                    0.0,
                    "Cell Voltage",
                    self.name,
                )
        fets = sample if sample is not None else step.last_sample
        charge_fet = fets.charge_fet if fets is not None else None
        discharge_fet = fets.discharge_fet if fets is not None else None
        if sample is not None:
            if charge_fet is False and limits.ccl:
                limits.ccl, limits.charge_limitation, limits.ccl_set_by = 0.0, "BMS", self.name
            if discharge_fet is False and limits.dcl:
                limits.dcl, limits.discharge_limitation, limits.dcl_set_by = 0.0, "BMS", self.name
        if limits.cvl is None and limits.ccl:
            # no charge voltage limit known: charging without one is not safe
            limits.ccl, limits.charge_limitation, limits.ccl_set_by = 0.0, NO_CVL_TEXT, self.name
        # an unknown FET state (None) does not block; only a FET reported off does
        limits.allow_to_charge = bool(limits.ccl) and charge_fet is not False
        limits.allow_to_discharge = bool(limits.dcl) and discharge_fet is not False

    def _clamp_cvl(self, limits: Limits, previous: Limits | None) -> None:
        cvl = limits.cvl
        if cvl is None or not math.isfinite(cvl):
            before = previous.cvl if previous is not None else None
            limits.cvl = before if before is not None and math.isfinite(before) else None
            if limits.cvl is not None and cvl is not None:
                limits.cvl_set_by = self.name
            return
        hi, lo = self._cvl_hi, self._cvl_lo
        if hi is not None and cvl > hi:
            limits.cvl, limits.cvl_set_by = hi, self.name
        elif lo is not None and cvl < lo:
            limits.cvl, limits.cvl_set_by = lo, self.name

    def _clamp_currents(self, limits: Limits) -> None:
        ccl = limits.ccl
        if ccl is None or not math.isfinite(ccl) or ccl < 0.0:
            limits.ccl, limits.charge_limitation, limits.ccl_set_by = 0.0, INVALID_TEXT, self.name
        elif ccl > self.max_ccl:
            limits.ccl, limits.charge_limitation, limits.ccl_set_by = (
                self.max_ccl,
                MAX_CHARGE_TEXT,
                self.name,
            )
        else:
            limits.ccl = round(ccl, 3)
        dcl = limits.dcl
        if dcl is None or not math.isfinite(dcl) or dcl < 0.0:
            limits.dcl, limits.discharge_limitation, limits.dcl_set_by = (
                0.0,
                INVALID_TEXT,
                self.name,
            )
        elif dcl > self.max_dcl:
            limits.dcl, limits.discharge_limitation, limits.dcl_set_by = (
                self.max_dcl,
                MAX_DISCHARGE_TEXT,
                self.name,
            )
        else:
            limits.dcl = round(dcl, 3)


def make_clamp_stage(ctx: StageContext) -> ClampStage:
    return ClampStage(ctx)


def _always(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    return True, "hard bounds on CVL/CCL/DCL from [control.limits]; always last"


SPECS: list[StageSpec] = [
    StageSpec(
        name="clamp",
        order=900,
        factory=make_clamp_stage,
        options=LimitsOptions,
        section="limits",
        predicate=_always,
        description="final clamp: hard bounds no stage can exceed, protection cut-offs, allow flags",
    )
]
