"""The CVL stage: charge voltage limit with the bulk → absorption → float state machine (CVCM),
the cell over-voltage controllers, the periodic SoC-reset voltage and the voltage drop (spec §1).

State that must survive a restart (float or not, when the last SoC-reset charge finished) lives in
the stage's store. Times are the injected clock ``step.t``; the SoC-reset interval is measured in
that clock too, so the host should pass wall-clock seconds (monotonic clocks restart at boot).
"""

from __future__ import annotations

import enum
from typing import Any

from bmshost.capabilities import Capability
from bmshost.control.cells import finite_or_none, sample_cell_stats
from bmshost.control.limit_options import CurrentLimitsOptions, CvlOptions
from bmshost.control.ovp import OvpRecovery, raw_target
from bmshost.stage import Stage, StageContext, StageSpec, Step

SAG_ABORT_V = 0.5  # absorption is abandoned when the cell sum sags this far below the target
VOLT_EPS = 0.0005  # V; half the usual BMS resolution, so cells exactly at target count as there
DIFF_EPS = 1e-6  # V; absorbs binary rounding of differences such as 3.46 − 3.45
ALARM_SUPPRESS_AFTER_RESET = 1800.0  # s of high-voltage alarm suppression after a SoC reset
SEPARATOR = " \u2502 "  # the box-drawing bar the reference puts before "Linear/Step Mode"


class Phase(enum.Enum):
    BULK = "bulk"  # also absorption: the timer tells them apart
    FLOAT_TRANSITION = "float_transition"
    FLOAT = "float"


class CvlStage(Stage):
    name = "cvl"

    def __init__(self, ctx: StageContext) -> None:
        o: CvlOptions = ctx.options
        self.o = o
        currents = ctx.control.get("current_limits") if isinstance(ctx.control, dict) else None
        step_mode = isinstance(currents, CurrentLimitsOptions) and currents.charge_mode == 2
        self.mode_suffix = SEPARATOR + ("Step Mode" if step_mode else "Linear Mode")
        self.store = ctx.store
        self.log = ctx.log
        self.ceiling = 2.0 * o.max_cell_voltage  # plausibility limit of one cell reading
        self.recovery = OvpRecovery(o.cvl_recovery_hold_sec, o.cvl_recovery_rate_v_per_sec)
        # the I-controller's set-point offset; a "disabled" diff (the reference's 10 V) would put
        # the set-point out of reach, so it falls back to the plain cell limit then
        diff = o.switch_to_float_cell_voltage_diff
        self.i_offset = diff if diff < 1.0 else 0.0
        self.phase = Phase.BULK if self.store.get("allow_max_voltage", True) else Phase.FLOAT
        if self.phase is Phase.FLOAT and self._bulk_criteria_disabled():
            # the reference documents "stays in float until restart" for this configuration
            self.phase = Phase.BULK
        self.absorption_start: float | None = None
        self.transition_pending = False  # entered float, ramp not started yet
        self.transition_start = 0.0
        self.transition_from = 0.0
        last = self.store.get("soc_reset_last_reached")
        self.soc_reset_last: float | None = float(last) if isinstance(last, int | float) else None
        self.soc_reset_requested = False
        self.cvl: float | None = None  # control voltage (without voltage drop)
        self.mode_text: str | None = None
        self.prev_t: float | None = None
        self._n = 0
        self._base_max_v = self._min_v = self._float_v = self._reset_v = 0.0

    def _bulk_criteria_disabled(self) -> bool:
        o = self.o
        return o.switch_to_bulk_soc_threshold <= 0.0 and o.switch_to_bulk_cell_voltage_diff >= 10.0

    def _set_cell_count(self, n: int) -> None:
        o = self.o
        self._n = n
        self._base_max_v = round(o.max_cell_voltage * n, 2)
        self._min_v = round(o.min_cell_voltage * n, 2)
        self._float_v = round(o.float_cell_voltage * n, 2)
        self._reset_v = round(o.soc_reset_cell_voltage * n, 2)

    def _publish(self, step: Step) -> None:
        if self.cvl is None:
            return
        limits = step.limits
        limits.cvl = round(self.cvl + self.o.voltage_drop, 2)
        limits.cvl_set_by = self.name
        limits.charge_mode = self.mode_text

    def _soc_reset_tick(self, t: float) -> None:
        days = self.o.soc_reset_after_days
        if days is None or self.soc_reset_requested:
            return
        if self.soc_reset_last is None or (t - self.soc_reset_last) / 86400.0 > days:
            self.soc_reset_requested = True

    def _soc_reset_done(self, t: float) -> None:
        self.soc_reset_requested = False
        self.soc_reset_last = t
        self.store["soc_reset_last_reached"] = t

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return  # silent BMS: the disconnect stage holds the last published limits
        o = self.o
        stats = sample_cell_stats(sample, self.ceiling)
        if stats is None:
            self._publish(step)  # no usable cells this cycle: hold what we had
            return
        if stats.count != self._n:
            self._set_cell_count(stats.count)
        t = step.t
        dt = 1.0 if self.prev_t is None else min(max(t - self.prev_t, 0.0), 10.0)
        self.prev_t = t

        self._soc_reset_tick(t)
        notes = step.notes
        if self.soc_reset_requested:
            max_v = self._reset_v
            allowed_cell = o.soc_reset_cell_voltage
        else:
            max_v = self._base_max_v
            allowed_cell = o.max_cell_voltage
            bms_cvl = finite_or_none(sample.bms_charge_voltage_limit)
            if o.use_bms_dvcc_values and bms_cvl is not None and 0.0 < bms_cvl < max_v:
                max_v = round(bms_cvl, 2)
        float_v = self._float_v if self._float_v < max_v else max_v
        step.limits.max_charge_cell_voltage = round(max_v / stats.count, 3)
        step.limits.battery_low_voltage = self._min_v
        last = self.soc_reset_last
        notes["suppress_high_voltage_alarms"] = self.soc_reset_requested or (
            last is not None and 0.0 <= t - last < ALARM_SUPPRESS_AFTER_RESET
        )

        extras = ""
        if self.soc_reset_requested:
            extras += " & SoC Reset"
        if sample.cell_balancing and any(sample.cell_balancing):
            extras += " + Balancing"
        if sample.heating:
            extras += " + Heating"

        if not o.cvcm_enable:
            self.cvl = max_v
            self.mode_text = "Keep always max voltage"
            if self.soc_reset_requested and stats.total >= max_v - VOLT_EPS:
                self._soc_reset_done(t)  # the reference never clears it without CVCM
            self._publish(step)
            return

        soc = finite_or_none(step.derived.soc)
        if soc is None:
            soc = finite_or_none(sample.soc)
        self._state_machine(t, stats.total, stats.highest - stats.lowest, soc, max_v, notes)

        if self.phase is Phase.BULK:
            raw = raw_target(
                o.cvl_controller_mode,
                stats.cells,
                stats.highest,
                allowed_cell,
                self.cvl,
                self._min_v,
                max_v,
                self.i_offset,
                o.cvl_icontroller_factor,
                dt,
            )
            self.recovery.cvl = self.cvl
            ovp = self.recovery.update(t, raw, max_v)
            self.cvl = self.recovery.cvl
            base = "Bulk" if self.absorption_start is None else "Absorption"
            self.mode_text = base + ovp + extras + self.mode_suffix
        else:
            self._float_branch(t, float_v, notes)
            # suffixes other than the mode belong to bulk/absorption only (reference §1.8)
            self.mode_text = (
                "Float Transition" if self.phase is Phase.FLOAT_TRANSITION else "Float"
            ) + self.mode_suffix
        notes["cvl_state"] = "absorption" if self.absorption_start is not None else self.phase.value
        self._publish(step)

    def _state_machine(
        self,
        t: float,
        total: float,
        spread: float,
        soc: float | None,
        max_v: float,
        notes: dict[str, Any],
    ) -> None:
        o = self.o
        if self.absorption_start is None:
            if (
                self.phase is Phase.BULK
                and total >= max_v - VOLT_EPS
                and spread <= o.switch_to_float_cell_voltage_diff + DIFF_EPS
            ):
                self.absorption_start = t
            elif self.phase is not Phase.BULK and (
                (soc is not None and soc < o.switch_to_bulk_soc_threshold)
                or spread >= o.switch_to_bulk_cell_voltage_diff - DIFF_EPS
                or self.soc_reset_requested
            ):
                self.phase = Phase.BULK
                self.transition_pending = False
                self.store["allow_max_voltage"] = True
            return
        if (
            spread
            > o.switch_to_float_cell_voltage_diff
            + o.switch_to_float_cell_voltage_deviation
            + DIFF_EPS
        ):
            self.absorption_start = t  # cells drifted apart again: absorption starts over
        if t - self.absorption_start > o.switch_to_float_wait_for_sec:
            self.phase = Phase.FLOAT_TRANSITION
            self.transition_pending = True
            self.absorption_start = None
            self.store["allow_max_voltage"] = False
            if soc is not None and soc <= o.switch_to_bulk_soc_threshold:
                self.log.warning(
                    "switched to float with SoC %.1f %% at or below switch_to_bulk_soc_threshold %.1f %%",
                    soc,
                    o.switch_to_bulk_soc_threshold,
                )
        elif total < max_v - SAG_ABORT_V:
            self.absorption_start = None  # the pack sagged: back to bulk

    def _float_branch(self, t: float, float_v: float, notes: dict[str, Any]) -> None:
        if self.soc_reset_requested:
            self._soc_reset_done(t)
        if self.cvl is None:
            # start-up in a persisted float state: no transition, no "full charge" event
            self.cvl = float_v
            self.phase = Phase.FLOAT
            self.transition_pending = False
            return
        if self.transition_pending:
            # first float cycle after absorption: the battery is full
            self.transition_pending = False
            self.transition_start = t
            self.transition_from = self.cvl
            self.recovery.reset()
            notes["full_charge"] = True
            return
        if self.phase is Phase.FLOAT_TRANSITION:
            drop = self.o.float_transition_rate_v_per_sec * (t - self.transition_start)
            span = self.transition_from - float_v
            cvl = round(self.transition_from - (drop if drop < span else span), 6)
            if cvl <= float_v:
                cvl = float_v
                self.phase = Phase.FLOAT
            self.cvl = cvl
            return
        self.cvl = float_v  # steady float (follows a changed cell count too)

    def command(self, name: str, value: Any) -> bool:
        if name == "soc_reset_voltage":  # request an elevated SoC-reset charge now
            if self.o.soc_reset_after_days is None:
                return False
            self.soc_reset_requested = bool(value)
            return True
        return False


def make_cvl_stage(ctx: StageContext) -> CvlStage:
    return CvlStage(ctx)


def _always(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    if options is not None and not options.cvcm_enable:
        return True, "cvcm_enable is off: CVL is kept at max_cell_voltage × cells"
    return True, "computes the charge voltage limit (bulk/absorption/float, cell OVP controller)"


SPECS: list[StageSpec] = [
    StageSpec(
        name="cvl",
        order=200,
        factory=make_cvl_stage,
        options=CvlOptions,
        section="cvl",
        predicate=_always,
        description="charge voltage limit: bulk/absorption/float, cell over-voltage controllers, "
        "SoC-reset voltage, voltage drop",
    )
]
