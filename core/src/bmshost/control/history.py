"""Battery history (Venus ``/History/*``): lifetime counters, extremes and energies (spec §4.8).

``history`` (order 1020, ``[control.history]``, only with ``history_enable``) updates every cycle
from the processed current, the effective SoC and the sample, and publishes ``derived.history``.
Its values are persisted in the stage store (under ``"values"``, at most every
``PERSIST_EVERY`` seconds and at once after events and clears) and restored at construction.
The ``history_clear`` command clears one group (1 all, 2 Ah values, 3 voltages, 4 full-charge
time and automatic syncs, 5 alarm counters, 6 temperatures, 7 energies), like ``/History/Clear``.

Differences from the reference (docs/control.md): updated every cycle instead of every 60 s, so
the start of a discharge is never missed; ``average_discharge`` is the mean depth of the completed
discharges (the reference's self-computed value was always the capacity); the alarm counters
count real rising edges (the reference compared an alarm with itself and never counted); Ah and
energy are integrated only between consecutive good samples (no integration across a gap). A BMS
with the charge-cycle-history capability supplies ``charge_cycles`` itself; it is never computed,
persisted or cleared here.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.control.cells import sample_cell_extremes
from bmshost.control.soc import NOTE_CAPACITY, FullChargeDetector, shared_option
from bmshost.model import History
from bmshost.stage import Stage, StageContext, StageSpec, Step

PERSIST_EVERY = 15.0  # s between store updates (events and clears write at once)
MAX_STEP = 300.0  # s; a longer step between two good samples is a gap (nothing integrated)
FULL_DISCHARGE_REARM_SOC = 15.0  # %: a full discharge counts again once SoC rose above this
DEFAULT_FLOAT_CELL_VOLTAGE = 3.375  # V, for the energy seed when no section defines it
DEFAULT_MAX_CELL_VOLTAGE = 3.45  # V; a cell above twice this is implausible and ignored

# Persisted values and their types. Ah and Wh are kept positive internally.
_FLOATS = (
    "deepest_discharge",
    "last_discharge",
    "discharge_acc",  # Ah drawn since the present discharge started
    "discharges_sum",  # Ah of the completed discharges
    "total_ah_drawn",
    "discharged_energy_wh",
    "charged_energy_wh",
)
_INTS = (
    "discharges_count",
    "full_discharges",
    "automatic_syncs",
    "low_voltage_alarms",
    "high_voltage_alarms",
)
_OPTIONAL_FLOATS = (
    "minimum_voltage",
    "maximum_voltage",
    "minimum_cell_voltage",
    "maximum_cell_voltage",
    "minimum_temperature",
    "maximum_temperature",
    "last_full_charge",  # t of the last switch to float
)
_BOOLS = ("full_discharge_armed", "seeded")

CLEAR_GROUPS: dict[int, tuple[str, ...]] = {
    2: (
        "deepest_discharge",
        "last_discharge",
        "discharge_acc",
        "discharges_sum",
        "discharges_count",
        "total_ah_drawn",
        "full_discharges",
        "full_discharge_armed",
    ),
    3: ("minimum_voltage", "maximum_voltage", "minimum_cell_voltage", "maximum_cell_voltage"),
    4: ("last_full_charge", "automatic_syncs"),
    5: ("low_voltage_alarms", "high_voltage_alarms"),
    6: ("minimum_temperature", "maximum_temperature"),
    7: ("discharged_energy_wh", "charged_energy_wh"),
}
CLEAR_GROUPS[1] = tuple(k for group in CLEAR_GROUPS.values() for k in group)


def _initial(key: str) -> Any:
    if key in _FLOATS:
        return 0.0
    if key in _INTS:
        return 0
    if key == "full_discharge_armed":
        return True
    if key == "seeded":
        return False
    return None


def restore(stored: Any) -> dict[str, Any]:
    """Values from the store; anything missing, of the wrong type or not finite starts fresh."""
    values = {k: _initial(k) for k in (*_FLOATS, *_INTS, *_OPTIONAL_FLOATS, *_BOOLS)}
    if not isinstance(stored, dict):
        return values
    for key, value in stored.items():
        if key not in values:
            continue
        if key in _BOOLS:
            if isinstance(value, bool):
                values[key] = value
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            continue
        if key in _OPTIONAL_FLOATS:
            values[key] = float(value)
        elif value >= 0:  # counters never go negative
            values[key] = int(value) if key in _INTS else float(value)
    return values


@attrs.define(kw_only=True)
class HistoryOptions:
    """``[control.history]`` (spec §7 ``HISTORY_ENABLE``)."""

    history_enable: bool = True


def _neg(ah: float) -> float:
    """Victron publishes drawn Ah as negative numbers (and never -0.0)."""
    return -round(ah, 3) if ah else 0.0


class HistoryStage(Stage):
    name = "history"

    def __init__(self, ctx: StageContext) -> None:
        self._store: MutableMapping[str, Any] = ctx.store
        self._v = restore(ctx.store.get("values"))
        self._bms_cycles = Capability.CHARGE_CYCLE_HISTORY in ctx.capabilities
        self._float_cell = float(
            shared_option(ctx.control, "float_cell_voltage", DEFAULT_FLOAT_CELL_VOLTAGE)
        )
        max_cell = float(shared_option(ctx.control, "max_cell_voltage", DEFAULT_MAX_CELL_VOLTAGE))
        self._ceiling = 2.0 * max_cell
        self._fallback_q = float(shared_option(ctx.control, "battery_capacity", 99.0))
        self._full = FullChargeDetector()
        self._prev_t: float | None = None
        self._prev_current: float | None = None
        self._prev_power: float | None = None
        self._prev_avg: float | None = None
        self._prev_low_alarm: int | None = None
        self._prev_high_alarm: int | None = None
        self._persisted_at: float | None = None
        self._dirty = False

    # -- commands --------------------------------------------------------------------------------

    def command(self, name: str, value: Any) -> bool:
        if name != "history_clear" or isinstance(value, bool):
            return False
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or value not in CLEAR_GROUPS:
            return False
        for key in CLEAR_GROUPS[value]:
            self._v[key] = _initial(key)
        self._prev_avg = None
        self._persist()
        return True

    # -- the cycle -------------------------------------------------------------------------------

    def step(self, step: Step) -> None:
        t = step.t
        v = self._v
        if self._full.update(step):
            v["last_full_charge"] = t
            v["automatic_syncs"] += 1
            self._dirty = True
        sample = step.sample
        q = step.notes.get(NOTE_CAPACITY) or self._fallback_q
        if sample is None:
            self._prev_t = self._prev_current = self._prev_power = None  # a gap: integrate nothing
        else:
            self._update(step, sample, q)
        last = self._persisted_at
        if self._dirty or last is None or t - last >= PERSIST_EVERY or t < last:
            self._persisted_at = t
            self._persist()
        step.derived.history = self._publish(t, sample.cycles if sample is not None else None, q)

    def _update(self, step: Step, sample: Any, q: float) -> None:
        v = self._v
        t = step.t
        derived = step.derived
        if not v["seeded"]:
            self._seed(sample, q)
        # Ah and Wh with the previous cycle's current and power (left rectangle, spec §3.2).
        prev_t = self._prev_t
        if prev_t is not None and 0.0 < t - prev_t <= MAX_STEP:
            hours = (t - prev_t) / 3600.0
            current = self._prev_current
            if current is not None and current < 0:
                ah = -current * hours
                v["total_ah_drawn"] += ah
                v["discharge_acc"] += ah
            power = self._prev_power
            if power is not None:
                if power > 0:
                    v["charged_energy_wh"] += power * hours
                else:
                    v["discharged_energy_wh"] -= power * hours
        current = derived.current
        voltage = sample.voltage
        if voltage is not None and not math.isfinite(voltage):
            voltage = None  # a garbled reading is no reading
        self._prev_t = t
        self._prev_current = current
        self._prev_power = (
            voltage * current if voltage is not None and current is not None else None
        )

        avg = derived.current_avg
        if avg is not None:
            prev = self._prev_avg
            if prev is not None:
                if avg < 0 <= prev:  # a discharge starts
                    v["discharge_acc"] = 0.0
                elif avg > 0 >= prev and v["discharge_acc"] > 0:  # a discharge ended
                    v["last_discharge"] = v["discharge_acc"]  # with its final interval
                    v["discharges_sum"] += v["discharge_acc"]
                    v["discharges_count"] += 1
            if avg <= 0:
                v["last_discharge"] = v["discharge_acc"]
            self._prev_avg = avg

        consumed = derived.consumed_ah
        if consumed is not None and -consumed > v["deepest_discharge"]:
            v["deepest_discharge"] = -consumed
        soc = derived.soc
        if soc is not None:
            if soc <= 0 and v["full_discharge_armed"]:
                v["full_discharges"] += 1
                v["full_discharge_armed"] = False
                self._dirty = True
            elif soc > FULL_DISCHARGE_REARM_SOC:
                v["full_discharge_armed"] = True

        if voltage is not None:
            self._extremes("minimum_voltage", "maximum_voltage", voltage, voltage)
        # missing and implausible cells are skipped; the BMS's own extremes count too
        cells = sample_cell_extremes(sample, self._ceiling)
        if cells is not None:
            self._extremes("minimum_cell_voltage", "maximum_cell_voltage", *cells)
        low_t, high_t = derived.min_temperature, derived.max_temperature
        if low_t is not None and high_t is not None:
            self._extremes("minimum_temperature", "maximum_temperature", low_t, high_t)
        self._count_alarms(sample.alarms, derived.alarms)

    def _extremes(self, low_key: str, high_key: str, low: float, high: float) -> None:
        v = self._v
        old = v[low_key]
        if old is None or low < old:
            v[low_key] = low
        old = v[high_key]
        if old is None or high > old:
            v[high_key] = high

    def _count_alarms(self, bms: dict[str, int] | None, driver: dict[str, int] | None) -> None:
        levels: dict[str, int] = {}
        for source in (bms, driver):
            if source:
                for name in (
                    "low_voltage",
                    "low_cell_voltage",
                    "high_voltage",
                    "high_cell_voltage",
                ):
                    level = source.get(name)
                    if level:
                        levels[name] = max(levels.get(name, 0), level)
        low = max(levels.get("low_voltage", 0), levels.get("low_cell_voltage", 0))
        high = max(levels.get("high_voltage", 0), levels.get("high_cell_voltage", 0))
        if self._prev_low_alarm == 0 and low > 0:
            self._v["low_voltage_alarms"] += 1
            self._dirty = True
        if self._prev_high_alarm == 0 and high > 0:
            self._v["high_voltage_alarms"] += 1
            self._dirty = True
        self._prev_low_alarm = low
        self._prev_high_alarm = high

    def _seed(self, sample: Any, q: float) -> None:
        """First run: start from the BMS's cycle count, as the reference does (§4.8)."""
        v = self._v
        cycles = sample.cycles
        if cycles is not None and cycles > 0:
            v["total_ah_drawn"] = cycles * q
            cells = sample.cell_count
            if cells:
                wh = self._float_cell * cells * q * cycles
                v["charged_energy_wh"] = wh
                v["discharged_energy_wh"] = wh
        v["seeded"] = True
        self._dirty = True

    def _persist(self) -> None:
        self._store["values"] = dict(self._v)
        self._dirty = False

    def _publish(self, t: float, bms_cycles: int | None, q: float) -> History:
        v = self._v
        total = v["total_ah_drawn"]
        if self._bms_cycles:
            cycles: float | None = float(bms_cycles) if bms_cycles is not None else None
        else:
            cycles = round(total / q, 3) if q > 0 else None
        count = v["discharges_count"]
        average = v["discharges_sum"] / count if count else v["last_discharge"]
        last_full = v["last_full_charge"]
        return History(
            deepest_discharge=_neg(v["deepest_discharge"]),
            last_discharge=_neg(v["last_discharge"]),
            average_discharge=_neg(average),
            charge_cycles=cycles,
            full_discharges=v["full_discharges"],
            total_ah_drawn=_neg(total),
            minimum_voltage=v["minimum_voltage"],
            maximum_voltage=v["maximum_voltage"],
            minimum_cell_voltage=v["minimum_cell_voltage"],
            maximum_cell_voltage=v["maximum_cell_voltage"],
            time_since_last_full_charge=None if last_full is None else max(0.0, t - last_full),
            automatic_syncs=v["automatic_syncs"],
            low_voltage_alarms=v["low_voltage_alarms"],
            high_voltage_alarms=v["high_voltage_alarms"],
            minimum_temperature=v["minimum_temperature"],
            maximum_temperature=v["maximum_temperature"],
            discharged_energy=round(v["discharged_energy_wh"] / 1000.0, 3),
            charged_energy=round(v["charged_energy_wh"] / 1000.0, 3),
        )


def _history_predicate(capabilities: frozenset[Capability], options: Any) -> tuple[bool, str]:
    if options.history_enable:
        return True, "history_enable is on"
    return False, "history_enable is off"


SPECS: list[StageSpec] = [
    StageSpec(
        name="history",
        order=1020,
        factory=HistoryStage,
        options=HistoryOptions,
        section="history",
        predicate=_history_predicate,
        description="charge cycles, Ah and energy counters, extremes, full discharges, syncs",
    ),
]
