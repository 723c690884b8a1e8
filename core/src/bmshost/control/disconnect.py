"""The disconnect stage: what the limits do while the BMS is silent (spec §4.7, done safer).

While the BMS does not answer, the last published limits are held (not recomputed from nothing).
After ``timeout_sec`` the limits go to the safe state, CCL = DCL = 0 by default (``keep_discharging``
keeps the last DCL), and the ``bms_cable`` alarm is raised (2). With ``block_on_disconnect = false``
the last limits are kept up to ``block_on_disconnect_timeout_minutes`` while the last known cells
were inside the voltage window, with the cable alarm as a warning (1). The host stays up; when data
returns the limit stages resume from the published values through their recovery ramps.
"""

from __future__ import annotations

from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.control.cells import NO_CEILING, sample_cell_extremes
from bmshost.control.limit_options import DisconnectOptions
from bmshost.model import Limits
from bmshost.stage import Stage, StageContext, StageSpec, Step

SAFE_STATE_TEXT = "BMS Connection Lost"
ALARM = "bms_cable"


def set_cable_alarm(step: Step, level: int) -> None:
    alarms = step.derived.alarms
    if alarms is None:
        step.derived.alarms = {ALARM: level}
    else:
        alarms[ALARM] = level


class DisconnectStage(Stage):
    name = "disconnect"

    def __init__(self, ctx: StageContext) -> None:
        self.o: DisconnectOptions = ctx.options
        self.log = ctx.log
        self.battery_id = ctx.battery_id
        self.first_fail: float | None = None
        self.held: Limits | None = None
        self.cells_in_window = False
        self.in_safe_state = False

    def _window_ok(self, step: Step) -> bool:
        last = step.last_sample
        extremes = sample_cell_extremes(last, NO_CEILING)
        if extremes is None:
            return False
        lo, hi = extremes
        o = self.o
        # strict, as the reference; NaN compares false and so counts as "outside"
        return bool(
            o.block_on_disconnect_voltage_min < lo and hi < o.block_on_disconnect_voltage_max
        )

    def step(self, step: Step) -> None:
        if step.sample is not None:
            if self.first_fail is not None:
                self.log.info(
                    "%s: BMS answers again after %.0f s",
                    self.battery_id or "battery",
                    step.t - self.first_fail,
                )
            self.first_fail = None
            self.held = None
            self.in_safe_state = False
            set_cable_alarm(step, 0)
            return
        t = step.t
        if self.first_fail is None:
            self.first_fail = t
            previous = step.notes.get("previous_limits")
            self.held = attrs.evolve(previous) if isinstance(previous, Limits) else None
            self.cells_in_window = self._window_ok(step)
        o = self.o
        elapsed = t - self.first_fail
        limits = step.limits
        held = self.held
        if held is not None:  # the limit stages skipped this cycle; publish the last values
            for field in attrs.fields(Limits):
                setattr(limits, field.name, getattr(held, field.name))
        step.notes["disconnect_elapsed"] = elapsed
        if elapsed < o.timeout_sec:
            set_cable_alarm(step, 0)
            return
        if (
            not o.block_on_disconnect
            and self.cells_in_window
            and elapsed < o.block_on_disconnect_timeout_minutes * 60.0
        ):
            set_cable_alarm(step, 1 if o.bms_cable_alarm else 0)
            return
        if not self.in_safe_state:
            self.in_safe_state = True
            self.log.warning(
                "%s: no answer from the BMS for %.0f s: charge%s blocked",
                self.battery_id or "battery",
                elapsed,
                "" if o.keep_discharging else " and discharge",
            )
        limits.ccl = 0.0
        limits.charge_limitation = SAFE_STATE_TEXT
        limits.ccl_set_by = self.name
        limits.allow_to_charge = False
        if not o.keep_discharging or limits.dcl is None:
            limits.dcl = 0.0
            limits.discharge_limitation = SAFE_STATE_TEXT
            limits.dcl_set_by = self.name
            limits.allow_to_discharge = False
        # the alarm level is raised even with bms_cable_alarm off: limits are blocked (reference)
        set_cable_alarm(step, 2)


def make_disconnect_stage(ctx: StageContext) -> DisconnectStage:
    return DisconnectStage(ctx)


def _always(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    if options is None:
        return True, "holds the last limits while the BMS is silent, then blocks"
    what = "CCL" if options.keep_discharging else "CCL and DCL"
    return (
        True,
        f"holds the last limits while the BMS is silent; {what} go to 0 after {options.timeout_sec:g} s",
    )


SPECS: list[StageSpec] = [
    StageSpec(
        name="disconnect",
        order=400,
        factory=make_disconnect_stage,
        options=DisconnectOptions,
        section="disconnect",
        predicate=_always,
        description="BMS silent: hold the last limits, then the safe state and the cable alarm",
    )
]
