"""Hold and ramp of one current limit (CCL or DCL) after a limiting condition clears (spec §2.6).

Reductions act at once (the reference delays small ones up to 60 s; here a lower limit is never
late). An increase waits ``hold_sec`` from the first cycle the target rose above the output, then
ramps at ``rate`` A/s. Leaving 0 A needs the target to reach ``threshold`` × maximum first.
"""

from __future__ import annotations

import attrs

APPLIED, HELD, RAMPING = 0, 1, 2


@attrs.define(slots=True)
class CurrentRecovery:
    max_current: float
    threshold: float  # fraction of max_current that the target must reach to leave 0 A
    hold_sec: float
    rate: float  # A/s; 0 jumps to the target once the hold is over
    output: float | None = None
    hold_start: float | None = None
    ramp_start: float | None = None
    ramp_value: float = 0.0

    def clear(self) -> None:
        self.hold_start = None
        self.ramp_start = None

    def force(self, value: float) -> None:
        """The published limit was overridden (safe state): continue from that value."""
        self.output = value
        self.clear()

    def update(self, t: float, target: float) -> int:
        """One cycle; sets ``output``. Returns APPLIED, HELD (reason gets " *") or RAMPING."""
        out = self.output
        if out is None or target <= out:  # first value, a reduction, or no change
            self.output = target
            self.clear()
            return APPLIED
        if out == 0.0 and target < self.max_current * self.threshold:
            self.clear()
            return HELD
        if self.hold_start is None:
            self.hold_start = t
        if t - self.hold_start < self.hold_sec:
            self.ramp_start = None
            return HELD
        if self.rate <= 0.0:
            self.output = target
            self.clear()
            return APPLIED
        if self.ramp_start is None:
            self.ramp_start = t
            self.ramp_value = out
        new = round(self.ramp_value + self.rate * (t - self.ramp_start), 3)
        if new >= target:
            self.output = target
            self.clear()
            return APPLIED
        self.output = new
        return RAMPING
