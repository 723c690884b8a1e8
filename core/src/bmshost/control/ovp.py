"""Cell over-voltage protection for the CVL: the three controller modes and the recovery hold/ramp.

The controller turns the cells into a raw target voltage; ``OvpRecovery`` turns the raw target
into the CVL: reductions act at once, increases wait ``cvl_recovery_hold_sec`` after the last
limiting cycle and then ramp at ``cvl_recovery_rate_v_per_sec`` (spec §1.5-§1.6).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

MODE_OFF, MODE_PENALTY, MODE_I, MODE_CLIPPED = 0, 1, 2, 3
CLIPPED_SUM_OFFSET = 0.010  # V, mode 3 adds this to the clipped cell sum
I_DT_MAX = 10.0  # s; the I-controller integrates real time, but never more than this per cycle

OVP_NONE, OVP_LIMIT, OVP_RECOVER = "", " (Cell OVP)", " (Cell OVP*)"


def clipped_sum(cells: Sequence[float], allowed: float) -> float:
    """Pack voltage if every cell were clipped at ``allowed`` (= cell sum − over-voltage penalty)."""
    return sum(c if c < allowed else allowed for c in cells)


def raw_target(
    mode: int,
    cells: Sequence[float],
    highest: float,
    allowed: float,
    previous_cvl: float | None,
    min_v: float,
    max_v: float,
    i_offset: float,
    i_factor: float,
    dt: float,
) -> float:
    """The controller's raw CVL target for this cycle."""
    if mode == MODE_I:
        if not previous_cvl:
            return max_v
        # Gain per second rather than per poll cycle, so it does not depend on the poll rate; with
        # a 1 s poll this is exactly the reference's per-cycle step.
        target = previous_cvl - (highest - allowed - i_offset) * i_factor * dt
        return min_v if target < min_v else (max_v if target > max_v else target)
    if highest <= allowed or mode == MODE_OFF or mode not in (MODE_PENALTY, MODE_CLIPPED):
        return max_v
    clipped = clipped_sum(cells, allowed)
    if mode == MODE_CLIPPED:
        return clipped + CLIPPED_SUM_OFFSET
    return min_v if clipped < min_v else (max_v if clipped > max_v else clipped)


@attrs.define(slots=True)
class OvpRecovery:
    """Hold and ramp of the CVL after a cell-OVP reduction (spec §1.6)."""

    hold_sec: float
    rate: float  # V/s; 0 jumps to the target once the hold is over
    cvl: float | None = None
    last_limit_time: float | None = None
    ramp_base: float | None = None

    def reset(self) -> None:
        """Forget a pending limitation (entering float: the next bulk starts unlimited)."""
        self.last_limit_time = None
        self.ramp_base = None

    def update(self, t: float, raw: float, max_v: float) -> str:
        """Apply one cycle; sets ``cvl`` and returns the OVP suffix of the charge-mode text."""
        if raw >= max_v and self.last_limit_time is None:
            self.cvl = max_v
            self.ramp_base = None
            return OVP_NONE
        if self.cvl is None or raw <= self.cvl:
            self.last_limit_time = t
            self.cvl = round(raw, 6)
            self.ramp_base = None
            return OVP_LIMIT
        if self.last_limit_time is None:
            self.last_limit_time = t
        since = t - self.last_limit_time
        if since < self.hold_sec:
            self.ramp_base = self.cvl
            return OVP_LIMIT
        if self.ramp_base is None:
            self.ramp_base = self.cvl
        if self.rate <= 0.0:
            allowed = raw if raw < max_v else max_v
        else:
            allowed = self.ramp_base + self.rate * (since - self.hold_sec)
            if allowed > max_v:
                allowed = max_v
        allowed = round(allowed, 6)
        if allowed >= max_v:
            allowed = max_v
            self.last_limit_time = None
            self.ramp_base = None
        self.cvl = allowed
        return OVP_RECOVER
