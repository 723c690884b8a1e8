"""Battery temperature: sensor calibration and selection (spec control.md §4.5).

``temperature`` (order 120, ``[control.temperature]``) calibrates each sensor with
``temperature_<n>_adjust = [offset, slope]`` (T := T * slope + offset; the MOSFET sensor with
``temperature_mos_adjust``), then averages the sensors listed in ``temperature_source_battery``
into ``derived.battery_temperature`` (0.1 °C) and their extremes into ``derived.min_temperature``
/ ``derived.max_temperature``.

The reference adjusted the stored reading in place every cycle, so a BMS module that did not
refresh a reading got the adjustment applied again and again (§9 item 17). Here the driver's
sample is never changed: the cycle's ``step.sample`` is replaced by a calibrated copy, so the
limit stages and sinks all see calibrated values and the next cycle starts from raw values again.
The names of the sensors holding the extremes go to ``step.derived.min_temperature_id`` /
``max_temperature_id`` (Venus ``/System/MinTemperatureCellId`` / ``MaxTemperatureCellId``).
"""

from __future__ import annotations

import math

import attrs

from bmshost.stage import Stage, StageContext, StageSpec, Step

_IDENTITY = (0.0, 1.0)


def _adjust(_: object, attribute: attrs.Attribute[list[float]], value: list[float]) -> None:
    if len(value) != 2:
        raise ValueError(f"{attribute.name}: expected [offset, slope], got {len(value)} values")
    if not all(math.isfinite(v) for v in value):
        raise ValueError(f"{attribute.name}: offset and slope must be finite numbers")


def _sources(_: object, attribute: attrs.Attribute[list[int]], value: list[int]) -> None:
    if not value:
        raise ValueError(f"{attribute.name}: name at least one sensor (1-4)")
    for n in value:
        if not 1 <= n <= 4:
            raise ValueError(f"{attribute.name}: sensor numbers are 1 to 4, not {n}")
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}: a sensor is listed twice")


def _identity() -> list[float]:
    return list(_IDENTITY)


@attrs.define(kw_only=True)
class TemperatureOptions:
    """``[control.temperature]`` (spec §7 "Additional settings")."""

    temperature_source_battery: list[int] = attrs.field(
        factory=lambda: [1, 2, 3, 4], validator=_sources
    )
    temperature_1_name: str = "Temp 1"
    temperature_2_name: str = "Temp 2"
    temperature_3_name: str = "Temp 3"
    temperature_4_name: str = "Temp 4"
    temperature_1_adjust: list[float] = attrs.field(factory=_identity, validator=_adjust)
    temperature_2_adjust: list[float] = attrs.field(factory=_identity, validator=_adjust)
    temperature_3_adjust: list[float] = attrs.field(factory=_identity, validator=_adjust)
    temperature_4_adjust: list[float] = attrs.field(factory=_identity, validator=_adjust)
    temperature_mos_adjust: list[float] = attrs.field(factory=_identity, validator=_adjust)

    def names(self) -> tuple[str, str, str, str]:
        return (
            self.temperature_1_name,
            self.temperature_2_name,
            self.temperature_3_name,
            self.temperature_4_name,
        )


def _calibrate(value: float | None, adjust: tuple[float, float]) -> float | None:
    if value is None:
        return None
    offset, slope = adjust
    return value * slope + offset


class TemperatureStage(Stage):
    name = "temperature"

    def __init__(self, ctx: StageContext) -> None:
        opts: TemperatureOptions = ctx.options
        adjusts = [
            opts.temperature_1_adjust,
            opts.temperature_2_adjust,
            opts.temperature_3_adjust,
            opts.temperature_4_adjust,
        ]
        self._adjust: list[tuple[float, float]] = [(a[0], a[1]) for a in adjusts]
        self._mos_adjust = (opts.temperature_mos_adjust[0], opts.temperature_mos_adjust[1])
        self._calibrating = (
            any(a != _IDENTITY for a in self._adjust) or self._mos_adjust != _IDENTITY
        )
        self._sources = [n - 1 for n in sorted(opts.temperature_source_battery)]
        self._names = opts.names()

    def step(self, step: Step) -> None:
        sample = step.sample
        if sample is None:
            return
        temps = sample.temperatures
        if self._calibrating:
            adjust = self._adjust
            if temps is not None:
                temps = [
                    t * adjust[i][1] + adjust[i][0] if i < 4 and t is not None else t
                    for i, t in enumerate(temps)
                ]
            step.sample = attrs.evolve(
                sample,
                temperatures=temps,
                mosfet_temperature=_calibrate(sample.mosfet_temperature, self._mos_adjust),
            )
        if not temps:
            return
        count = len(temps)
        total = 0.0
        used = 0
        low = high = 0.0
        low_i = high_i = -1
        for i in self._sources:
            if i >= count:
                break
            value = temps[i]
            if value is None or not math.isfinite(value):
                continue
            total += value
            used += 1
            if low_i < 0 or value < low:  # ties: the lower sensor number holds the minimum
                low, low_i = value, i
            if high_i < 0 or value >= high:  # ties: the higher sensor number holds the maximum
                high, high_i = value, i
        if not used:
            return
        derived = step.derived
        derived.battery_temperature = round(total / used, 1)
        derived.min_temperature = low
        derived.max_temperature = high
        step.derived.min_temperature_id = self._names[low_i]
        step.derived.max_temperature_id = self._names[high_i]


SPECS: list[StageSpec] = [
    StageSpec(
        name="temperature",
        order=120,
        factory=TemperatureStage,
        options=TemperatureOptions,
        section="temperature",
        description="battery temperature: sensor calibration, selection, mean/min/max",
    ),
]
