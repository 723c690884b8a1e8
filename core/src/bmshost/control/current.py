"""The processed current: external sensor or corrected BMS current, clamped by the FET state.

Spec: control.md §3.2, §4.4, §2.7. Every later stage (SoC counting, averages, time-to-go, history)
reads ``step.derived.current``, never the raw BMS current.

* ``sensor`` (order 105, section ``[control.sensor]``, only when a device is configured) holds the
  latest values of an external current/SoC sensor (e.g. a SmartShunt). Something outside the
  pipeline that can see that sensor (the Venus sink on D-Bus, a test) feeds them in with the
  stage commands ``external_current`` and ``external_soc`` (value: a number, or None when the
  sensor disappeared). Unlike the reference, a missing or invalid value never ends the process: the
  stage falls back to the BMS values until the next valid one.
* ``current`` (order 110, section ``[control.soc]``) picks the external current when present,
  else maps the BMS current through the correction table ``current_reported_by_bms`` ->
  ``current_measured_by_user`` (linear, clamped at both ends, 3 decimals), then clamps it by the
  FET state: charge FET off -> no positive current, discharge FET off -> no negative current.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import pairwise
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.stage import Stage, StageContext, StageSpec, Step

NOTE_EXTERNAL_CURRENT = "external_current"
NOTE_EXTERNAL_SOC = "external_soc"


def check_correction_map(reported: list[float], measured: list[float]) -> None:
    """Shape check of the current correction table; ValueError names the table."""
    if len(reported) != len(measured):
        raise ValueError(
            "current_reported_by_bms and current_measured_by_user must have the same length "
            f"({len(reported)} != {len(measured)})"
        )
    if len(reported) < 2:
        raise ValueError("current_reported_by_bms: needs at least two points")
    for name, values in (
        ("current_reported_by_bms", reported),
        ("current_measured_by_user", measured),
    ):
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{name}: values must be finite numbers")
    rising = all(a < b for a, b in pairwise(reported))
    falling = all(a > b for a, b in pairwise(reported))
    if not (rising or falling):
        raise ValueError(
            "current_reported_by_bms: breakpoints must be strictly increasing or decreasing"
        )


class CorrectionMap:
    """Piecewise-linear map reported -> measured, clamped outside the table (spec §2.3, §3.2)."""

    __slots__ = ("_x", "_y", "active")

    def __init__(self, reported: list[float], measured: list[float]) -> None:
        check_correction_map(reported, measured)
        pairs = sorted(zip(reported, measured, strict=True))
        self._x = [p[0] for p in pairs]
        self._y = [p[1] for p in pairs]
        self.active = list(reported) != list(measured)

    def __call__(self, value: float) -> float:
        x, y = self._x, self._y
        if value <= x[0]:
            return round(y[0], 3)
        if value >= x[-1]:
            return round(y[-1], 3)
        i = bisect_right(x, value) - 1
        y0, y1 = y[i], y[i + 1]
        out = y0 + (value - x[i]) / (x[i + 1] - x[i]) * (y1 - y0)
        return round(min(max(out, min(y0, y1)), max(y0, y1)), 3)


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class CurrentStage(Stage):
    name = "current"

    def __init__(self, ctx: StageContext) -> None:
        opts = ctx.options  # SocOptions (section [control.soc])
        correction = CorrectionMap(opts.current_reported_by_bms, opts.current_measured_by_user)
        self._correct = correction if correction.active else None

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return
        current = step.notes.get(NOTE_EXTERNAL_CURRENT)
        if current is None:
            current = sample.current
            if current is None or not math.isfinite(current):
                return
            if self._correct is not None:
                current = self._correct(current)
        # A FET that is off cannot carry current in its direction; readings that say otherwise
        # are noise (spec §2.7).
        if sample.charge_fet is False and current > 0:
            current = 0.0
        if sample.discharge_fet is False and current < 0:
            current = 0.0
        step.derived.current = current


@attrs.define(kw_only=True)
class SensorOptions:
    """``[control.sensor]``: an external current/SoC sensor (spec §4.4). Empty = not used."""

    external_sensor_dbus_device: str = ""
    external_sensor_dbus_path_current: str = ""
    external_sensor_dbus_path_soc: str = ""

    def __attrs_post_init__(self) -> None:
        has_path = self.external_sensor_dbus_path_current or self.external_sensor_dbus_path_soc
        if has_path and not self.external_sensor_dbus_device:
            raise ValueError("external_sensor_dbus_device: required when a sensor path is set")
        for name in ("external_sensor_dbus_path_current", "external_sensor_dbus_path_soc"):
            path = getattr(self, name)
            if path and not path.startswith("/"):
                raise ValueError(f"{name}: a D-Bus object path starts with '/', not {path!r}")


class SensorStage(Stage):
    """Publishes the latest external sensor values into the cycle's notes."""

    name = "sensor"

    def __init__(self, ctx: StageContext) -> None:
        opts: SensorOptions = ctx.options
        self._use_current = bool(opts.external_sensor_dbus_path_current)
        self._use_soc = bool(opts.external_sensor_dbus_path_soc)
        self._current: float | None = None
        self._soc: float | None = None

    def command(self, name: str, value: Any) -> bool:
        if name == "external_current" and self._use_current:
            self._current = None if value is None else _finite_or_none(value)
            return value is None or self._current is not None
        if name == "external_soc" and self._use_soc:
            soc = None if value is None else _finite_or_none(value)
            self._soc = None if soc is None or not 0.0 <= soc <= 100.0 else soc
            return value is None or self._soc is not None
        return False

    def step(self, step: Step) -> None:
        if self._current is not None:
            step.notes[NOTE_EXTERNAL_CURRENT] = round(self._current, 3)
        if self._soc is not None:
            step.notes[NOTE_EXTERNAL_SOC] = round(self._soc, 3)


def _sensor_predicate(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    opts: SensorOptions = options
    if opts.external_sensor_dbus_device:
        return True, f"external sensor {opts.external_sensor_dbus_device} configured"
    return False, "no external_sensor_dbus_device configured"


SPECS: list[StageSpec] = [
    StageSpec(
        name="sensor",
        order=105,
        factory=SensorStage,
        options=SensorOptions,
        section="sensor",
        predicate=_sensor_predicate,
        description="external current/SoC sensor values (fed by a sink through stage commands)",
    ),
]
