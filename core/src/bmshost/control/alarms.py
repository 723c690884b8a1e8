"""Driver-raised alarms with thresholds and hysteresis (spec §4.9), next to the BMS's own.

``alarms`` (order 1010, ``[control.alarms]``) evaluates rules on the effective values of the cycle
and merges the levels (0 ok, 1 warning, 2 alarm) into ``step.derived.alarms`` key by key, keeping
the higher level when another stage already set the same alarm (e.g. control A's ``bms_cable``).

* ``low_soc`` from the effective SoC: warning below ``soc_low_warning``, alarm below
  ``soc_low_alarm`` (the reference's LltJbd rule, here for every BMS and also for a calculated SoC).
* Optional, off unless their thresholds are set: ``low_cell_voltage`` / ``high_cell_voltage``
  (lowest / highest cell), ``cell_imbalance`` (highest - lowest cell), ``low_temperature`` /
  ``high_temperature`` (selected battery sensors), ``high_internal_temperature`` (MOSFET).

Hysteresis: a level is entered when the value crosses its threshold and left only once the value
has come back past the threshold by the rule's hysteresis, so a value sitting on a threshold does
not make the alarm flap. A rule whose input is unknown this cycle (BMS silent, no sensor) keeps its
last level. While the CVL stage signals a SoC-reset charge
(``notes["suppress_high_voltage_alarms"]``) the high cell voltage alarm is held at 0, as in the
reference (§1.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.control.cells import NO_CEILING, sample_cell_extremes
from bmshost.stage import Stage, StageContext, StageSpec, Step

_opt = attrs.validators.optional


def _in_range(low: float, high: float) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{attribute.name}: must be between {low} and {high}, not {value}")

    return check


_soc = _in_range(0.0, 100.0)
_volts = _in_range(0.0, 10.0)
_temp = _in_range(-60.0, 200.0)
_hyst = _in_range(0.0, 100.0)


@attrs.define(kw_only=True)
class AlarmOptions:
    """``[control.alarms]``. ``None`` disables that level of a rule."""

    soc_low_warning: float | None = attrs.field(default=20.0, validator=_soc)
    soc_low_alarm: float | None = attrs.field(default=10.0, validator=_soc)
    soc_low_hysteresis: float = attrs.field(default=2.0, validator=_hyst)  # %
    low_cell_voltage_warning: float | None = attrs.field(default=None, validator=_volts)
    low_cell_voltage_alarm: float | None = attrs.field(default=None, validator=_volts)
    high_cell_voltage_warning: float | None = attrs.field(default=None, validator=_volts)
    high_cell_voltage_alarm: float | None = attrs.field(default=None, validator=_volts)
    cell_voltage_hysteresis: float = attrs.field(default=0.05, validator=_hyst)  # V
    cell_imbalance_warning: float | None = attrs.field(default=None, validator=_volts)
    cell_imbalance_alarm: float | None = attrs.field(default=None, validator=_volts)
    cell_imbalance_hysteresis: float = attrs.field(default=0.01, validator=_hyst)  # V
    low_temperature_warning: float | None = attrs.field(default=None, validator=_temp)
    low_temperature_alarm: float | None = attrs.field(default=None, validator=_temp)
    high_temperature_warning: float | None = attrs.field(default=None, validator=_temp)
    high_temperature_alarm: float | None = attrs.field(default=None, validator=_temp)
    high_internal_temperature_warning: float | None = attrs.field(default=None, validator=_temp)
    high_internal_temperature_alarm: float | None = attrs.field(default=None, validator=_temp)
    temperature_hysteresis: float = attrs.field(default=2.0, validator=_hyst)  # °C

    def __attrs_post_init__(self) -> None:
        for rule in RULES:
            warning = getattr(self, rule.warning)
            alarm = getattr(self, rule.alarm)
            if warning is None or alarm is None:
                continue
            if rule.high and alarm < warning:
                raise ValueError(f"{rule.alarm} must not be below {rule.warning}")
            if not rule.high and alarm > warning:
                raise ValueError(f"{rule.alarm} must not be above {rule.warning}")


@attrs.frozen(slots=True)
class Rule:
    alarm_name: str  # Venus alarm name (model.ALARM_NAMES)
    input: str  # which value of the cycle (see _inputs)
    high: bool  # True: the alarm is for values above the thresholds
    warning: str  # option names
    alarm: str
    hysteresis: str


RULES: tuple[Rule, ...] = (
    Rule("low_soc", "soc", False, "soc_low_warning", "soc_low_alarm", "soc_low_hysteresis"),
    Rule(
        "low_cell_voltage",
        "min_cell",
        False,
        "low_cell_voltage_warning",
        "low_cell_voltage_alarm",
        "cell_voltage_hysteresis",
    ),
    Rule(
        "high_cell_voltage",
        "max_cell",
        True,
        "high_cell_voltage_warning",
        "high_cell_voltage_alarm",
        "cell_voltage_hysteresis",
    ),
    Rule(
        "cell_imbalance",
        "cell_spread",
        True,
        "cell_imbalance_warning",
        "cell_imbalance_alarm",
        "cell_imbalance_hysteresis",
    ),
    Rule(
        "low_temperature",
        "min_temperature",
        False,
        "low_temperature_warning",
        "low_temperature_alarm",
        "temperature_hysteresis",
    ),
    Rule(
        "high_temperature",
        "max_temperature",
        True,
        "high_temperature_warning",
        "high_temperature_alarm",
        "temperature_hysteresis",
    ),
    Rule(
        "high_internal_temperature",
        "mosfet_temperature",
        True,
        "high_internal_temperature_warning",
        "high_internal_temperature_alarm",
        "temperature_hysteresis",
    ),
)


class Threshold:
    """One alarm's level with hysteresis. Thresholds are stored sign-flipped for "low" rules so
    that one comparison direction ("value above threshold") serves both kinds."""

    __slots__ = ("_alarm", "_hyst", "_sign", "_warn", "input", "level", "name")

    def __init__(self, rule: Rule, options: AlarmOptions) -> None:
        self.name = rule.alarm_name
        self.input = rule.input
        sign = 1.0 if rule.high else -1.0
        warn = getattr(options, rule.warning)
        alarm = getattr(options, rule.alarm)
        self._sign = sign
        self._warn = None if warn is None else sign * warn
        self._alarm = None if alarm is None else sign * alarm
        self._hyst = float(getattr(options, rule.hysteresis))
        self.level: int | None = None  # None until the input was known once

    @property
    def enabled(self) -> bool:
        return self._warn is not None or self._alarm is not None

    def update(self, value: float) -> int:
        x = self._sign * value
        warn, alarm = self._warn, self._alarm
        raw = 2 if alarm is not None and x > alarm else 1 if warn is not None and x > warn else 0
        level = self.level or 0
        if raw < level:
            # Leave a level only when the value is back past its threshold by the hysteresis.
            h = self._hyst
            held = (
                2
                if alarm is not None and x > alarm - h
                else 1
                if warn is not None and x > warn - h
                else 0
            )
            raw = max(raw, min(level, held))
        self.level = raw
        return raw


def _inputs(step: Step) -> dict[str, float | None]:
    derived = step.derived
    values: dict[str, float | None] = {
        "soc": derived.soc,
        "min_temperature": derived.min_temperature,
        "max_temperature": derived.max_temperature,
        "min_cell": None,
        "max_cell": None,
        "cell_spread": None,
        "mosfet_temperature": None,
    }
    sample = step.sample
    if sample is not None:
        values["mosfet_temperature"] = sample.mosfet_temperature
        # every positive finite cell counts here (the list and the BMS's own extremes): an alarm
        # must see a reading the limit stages would discard as implausible
        extremes = sample_cell_extremes(sample, NO_CEILING)
        if extremes is not None:
            low, high = extremes
            values["min_cell"], values["max_cell"] = low, high
            values["cell_spread"] = round(high - low, 6)
    return values


class AlarmsStage(Stage):
    name = "alarms"

    def __init__(self, ctx: StageContext) -> None:
        opts: AlarmOptions = ctx.options
        self._rules = [th for th in (Threshold(rule, opts) for rule in RULES) if th.enabled]
        self._needs_cells = any(
            th.input in ("min_cell", "max_cell", "cell_spread", "mosfet_temperature")
            for th in self._rules
        )

    def step(self, step: Step) -> None:
        # The default rule set (low SoC only) skips the cell scan.
        values = _inputs(step) if self._needs_cells else {"soc": step.derived.soc}
        suppress_high = bool(step.notes.get("suppress_high_voltage_alarms"))
        out = step.derived.alarms
        if out is None:
            out = step.derived.alarms = {}
        for th in self._rules:
            value = values.get(th.input)
            if value is not None and math.isfinite(value):
                level = th.update(value)
            elif th.level is None:
                continue
            else:
                level = th.level
            if suppress_high and th.name == "high_cell_voltage":
                level = 0
            if level > out.get(th.name, 0) or th.name not in out:
                out[th.name] = level


def _alarms_predicate(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    enabled = [th.name for th in (Threshold(rule, options) for rule in RULES) if th.enabled]
    if enabled:
        return True, "driver alarms: " + ", ".join(enabled)
    return False, "no alarm thresholds configured"


SPECS: list[StageSpec] = [
    StageSpec(
        name="alarms",
        order=1010,
        factory=AlarmsStage,
        options=AlarmOptions,
        section="alarms",
        predicate=_alarms_predicate,
        description="driver-raised alarms (low SoC, optional cell and temperature thresholds)",
    ),
]
