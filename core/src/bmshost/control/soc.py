"""State of charge: the effective SoC every other stage uses, and the coulomb counter behind it.

Spec: control.md §3. The effective SoC is, in priority order, the external sensor's SoC (while
the sensor is present), the coulomb-counted SoC (``soc_calculation = true``), or the BMS's SoC.

Two stages share the ``[control.soc]`` section:

* ``soc`` (order 150, an input stage) integrates the processed current into the remaining
  capacity, detects "empty" (lowest cell at ``min_cell_voltage`` while discharging for more than
  60 s) and writes ``derived.soc``/``soc_bms``/``remaining_ah``/``consumed_ah`` before the limit
  stages read them.
* ``soc_sync`` (order 1000, after the CVL stage decided the charge mode) anchors the counter at
  100 % when the battery enters float, and asks the host to reset the BMS's own SoC
  (``AUTO_RESET_SOC``) when the driver can do that.

Gap handling (defined here, not in the reference): a cycle without a sample integrates nothing,
and the first good sample after a gap (or after a clock step larger than ``MAX_INTEGRATION_STEP``
or a clock going backwards) restarts the integration instead of integrating the last current
over the whole outage. The Ah that flowed during an outage are lost; the next full/empty anchor
corrects the drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from bmshost.capabilities import Capability
from bmshost.control.current import NOTE_EXTERNAL_SOC, CurrentStage, check_correction_map
from bmshost.stage import Stage, StageContext, StageSpec, Step

T = TypeVar("T")

MAX_INTEGRATION_STEP = 300.0  # s; a longer step between two good samples counts as a gap
EMPTY_HOLD_SECONDS = (
    60.0  # lowest cell at/below min_cell_voltage while discharging this long -> 0 %
)
DEFAULT_MIN_CELL_VOLTAGE = 2.9  # V, used when no stage section defines min_cell_voltage

# Note keys (stage-to-stage hand-over within one cycle; see docs/control.md).
NOTE_CAPACITY = "capacity_ah"  # float: the capacity Q the SoC stages used this cycle
NOTE_SOC_SOURCE = "soc_source"  # "external", "calculated" or "bms"
NOTE_SOC_COUNTER = "soc_counter"  # the SocStage object, so soc_sync can anchor it
NOTE_FULL_CHARGE = "full_charge"  # True: the CVL stage entered float from bulk/absorption
NOTE_BMS_SOC_RESET = "bms_soc_reset_request"  # float %: the host writes this SoC to the BMS


def shared_option(control: Any, name: str, default: T) -> T:
    """Look ``name`` up in every validated ``[control.*]`` section (for values owned by another
    stage, e.g. ``min_cell_voltage``); ``default`` when no section defines it."""
    if isinstance(control, Mapping):
        for section in control.values():
            value = getattr(section, name, None)
            if value is not None:
                return value  # type: ignore[no-any-return]
    return default


def _capacity(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 100_000):
        raise ValueError(
            f"{attribute.name}: must be between 0 (exclusive) and 100000 Ah, not {value}"
        )


@attrs.define(kw_only=True)
class SocOptions:
    """``[control.soc]``: SoC calculation, BMS SoC reset, current correction (spec §3, §7)."""

    soc_calculation: bool = False
    battery_capacity: float = attrs.field(
        default=99.0, validator=_capacity
    )  # Ah, when the BMS has none
    auto_reset_soc: bool = True
    current_reported_by_bms: list[float] = attrs.field(factory=lambda: [-300.0, 300.0])
    current_measured_by_user: list[float] = attrs.field(factory=lambda: [-300.0, 300.0])

    def __attrs_post_init__(self) -> None:
        check_correction_map(self.current_reported_by_bms, self.current_measured_by_user)


class FullChargeDetector:
    """Sees the bulk/absorption -> float transition ("the battery is full").

    The CVL stage says so with ``step.notes["full_charge"] = True`` in the cycle it enters float
    from absorption (never on a start-up already in float, and, unlike the reference, not after a
    recovery from a calculation error: spec §1.4 [QUIRK]). A stage may count the same event only
    once per cycle; the detector keeps that contract in one place.
    """

    __slots__ = ()

    @staticmethod
    def update(step: Step) -> bool:
        return bool(step.notes.get(NOTE_FULL_CHARGE))


def capacity_of(step: Step, fallback: float) -> float:
    """Installed capacity Q: the BMS's when it reports one, else ``battery_capacity``."""
    sample = step.sample if step.sample is not None else step.last_sample
    if sample is not None:
        q = sample.capacity_ah
        if q is not None and q > 0 and math.isfinite(q):
            return q
    return fallback


def lowest_plausible_cell(cells: list[float] | None) -> float | None:
    """Lowest cell voltage, skipping missing (0/None) and non-finite cells."""
    if not cells:
        return None
    low: float | None = None
    for v in cells:
        if v is not None and v > 0 and math.isfinite(v) and (low is None or v < low):
            low = v
    return low


class SocStage(Stage):
    """Effective SoC and the coulomb counter (spec §3.1, §3.3, §3.6, §3.7)."""

    name = "soc"

    def __init__(self, ctx: StageContext) -> None:
        opts: SocOptions = ctx.options
        self._calc = opts.soc_calculation
        self._fallback_q = opts.battery_capacity
        self._min_cell = float(
            shared_option(ctx.control, "min_cell_voltage", DEFAULT_MIN_CELL_VOLTAGE)
        )
        self._store = ctx.store
        self._remain: float | None = None  # Ah; None = (re)initialise on the next good sample
        self._t_last: float | None = None  # None = the next sample restarts the integration
        self._empty_since: float | None = None
        self._soc: float | None = None  # last calculated SoC, %
        self._q = self._fallback_q
        # A SoC persisted by an earlier run (or set by soc_reset) seeds the counter.
        self._seed: float | None = None
        stored = ctx.store.get("soc")
        if self._calc and isinstance(stored, int | float) and math.isfinite(stored):
            self._seed = min(100.0, max(0.0, float(stored)))
            self._soc = self._seed

    # -- commands --------------------------------------------------------------------------------

    def command(self, name: str, value: Any) -> bool:
        if name != "soc_reset" or not self._calc:
            return False  # without the calculation the host sends the reset to the BMS itself
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return False
        target = min(100.0, max(0.0, float(value)))
        self._seed = target
        self._soc = target
        self._remain = None
        self._empty_since = None
        self._store["soc"] = target
        return True

    # -- the cycle -------------------------------------------------------------------------------

    def step(self, step: Step) -> None:
        q = capacity_of(step, self._fallback_q)
        self._q = q
        notes = step.notes
        notes[NOTE_CAPACITY] = q
        notes[NOTE_SOC_COUNTER] = self
        derived = step.derived
        sample = step.sample
        if sample is None:
            # No integration across a gap; the counter's value is state, so it stays published.
            self._t_last = None
            if self._calc and self._soc is not None:
                self._publish(derived, self._soc, q, "calculated", notes)
            return
        soc_bms = sample.soc
        if soc_bms is not None and not math.isfinite(soc_bms):
            soc_bms = None  # a garbled reading is no reading
        derived.soc_bms = soc_bms
        current = derived.current if derived.current is not None else sample.current
        if self._calc:
            self._count(step.t, current, soc_bms, q, sample.cell_voltages)
        external = notes.get(NOTE_EXTERNAL_SOC)
        if external is not None:
            self._publish(derived, round(external, 3), q, "external", notes)
        elif self._calc:
            if self._soc is not None:
                self._publish(derived, self._soc, q, "calculated", notes)
        elif soc_bms is not None:
            notes[NOTE_SOC_SOURCE] = "bms"
            soc = soc_bms if 0.0 <= soc_bms <= 100.0 else min(100.0, max(0.0, soc_bms))
            derived.soc = soc
            remaining = sample.remaining_ah
            if remaining is None or not math.isfinite(remaining):
                remaining = q * soc / 100.0
            derived.remaining_ah = remaining
            derived.consumed_ah = -abs(q - remaining)

    @staticmethod
    def _publish(derived: Any, soc: float, q: float, source: str, notes: dict[str, Any]) -> None:
        notes[NOTE_SOC_SOURCE] = source
        derived.soc = soc
        remaining = q * soc / 100.0
        derived.remaining_ah = remaining
        derived.consumed_ah = -abs(q - remaining)

    def _count(
        self,
        t: float,
        current: float | None,
        soc_bms: float | None,
        q: float,
        cells: list[float] | None,
    ) -> None:
        remain = self._remain
        if remain is None:
            if self._seed is not None:
                remain = q * self._seed / 100.0
            elif soc_bms is not None and math.isfinite(soc_bms):
                remain = q * min(100.0, max(0.0, soc_bms)) / 100.0
            else:
                remain = q
            self._seed = None
            self._t_last = t if current is not None else None
        elif current is None or not math.isfinite(current):
            self._t_last = None  # cannot integrate; restart when the current is back
        else:
            t_last = self._t_last
            if t_last is not None and 0.0 <= t - t_last <= MAX_INTEGRATION_STEP:
                remain += current * (t - t_last) / 3600.0  # right rectangle (spec §3.3)
            self._t_last = t
            if remain > q:
                remain = q
            elif remain < 0.0:
                remain = 0.0
            # Empty: lowest cell at/below min_cell_voltage while discharging for > 60 s. The timer
            # clears as soon as either condition stops (the reference kept it, §3.3 [QUIRK]).
            low = lowest_plausible_cell(cells) if current < 0 else None
            if low is not None and low <= self._min_cell:
                since = self._empty_since
                if since is None or t < since:
                    self._empty_since = t
                elif t - since > EMPTY_HOLD_SECONDS and remain > 0.0:
                    remain = 0.0
                    self._empty_since = None
            else:
                self._empty_since = None
        self._remain = remain
        soc = round(min(100.0, max(0.0, remain / q * 100.0)), 3)
        self._soc = soc
        self._store["soc"] = soc

    # -- used by soc_sync ------------------------------------------------------------------------

    @property
    def calculating(self) -> bool:
        return self._calc

    @property
    def soc(self) -> float | None:
        return self._soc

    def anchor_full(self, step: Step) -> None:
        """The battery is full (entered float): the counter becomes 100 % (spec §1.7, §3.3)."""
        if not self._calc:
            return
        self._remain = self._q
        self._seed = None
        self._empty_since = None
        self._soc = 100.0
        self._store["soc"] = 100.0
        if step.notes.get(NOTE_SOC_SOURCE) == "calculated":
            self._publish(step.derived, 100.0, self._q, "calculated", step.notes)


class SocSyncStage(Stage):
    """At the switch to float: counter to 100 %, and the BMS SoC reset request (spec §3.5)."""

    name = "soc_sync"

    def __init__(self, ctx: StageContext) -> None:
        opts: SocOptions = ctx.options
        self._bms_reset = opts.auto_reset_soc and Capability.SOC_RESET in ctx.capabilities
        self._detector = FullChargeDetector()

    def step(self, step: Step) -> None:
        if not self._detector.update(step):
            return
        counter = step.notes.get(NOTE_SOC_COUNTER)
        if isinstance(counter, SocStage):
            counter.anchor_full(step)
        if self._bms_reset:
            step.notes[NOTE_BMS_SOC_RESET] = 100.0


def _soc_sync_predicate(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    opts: SocOptions = options
    reasons = []
    if opts.soc_calculation:
        reasons.append("soc_calculation anchors the counter at 100 % on float")
    if opts.auto_reset_soc and Capability.SOC_RESET in capabilities:
        reasons.append("auto_reset_soc and the BMS can reset its SoC")
    if reasons:
        return True, "; ".join(reasons)
    return (
        False,
        "soc_calculation is off and (auto_reset_soc is off or the BMS cannot reset its SoC)",
    )


SPECS: list[StageSpec] = [
    StageSpec(
        name="current",
        order=110,
        factory=CurrentStage,
        options=SocOptions,
        section="soc",
        description="processed current: external sensor or corrected BMS current, FET clamp",
    ),
    StageSpec(
        name="soc",
        order=150,
        factory=SocStage,
        options=SocOptions,
        section="soc",
        description="effective SoC: external sensor, coulomb counting or the BMS",
    ),
    StageSpec(
        name="soc_sync",
        order=1000,
        factory=SocSyncStage,
        options=SocOptions,
        section="soc",
        predicate=_soc_sync_predicate,
        description="at the switch to float: calculated SoC to 100 %, BMS SoC reset request",
    ),
]
