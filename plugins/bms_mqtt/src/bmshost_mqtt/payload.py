"""Sans-I/O parsers for battery data arriving as JSON over MQTT.

Two payload formats are understood:

* ``generic``: the reference driver's "Generic MQTT BMS" schema (spec ``dbus.md`` §5.4), the one
  ESPHome configurations and other programs already publish;
* ``bmshost``: the retained state message of bmshost's own MQTT sink (a ``Sample`` at the top
  level plus ``t``/``online``/``stale``/``limits``/``derived``), so one host can feed another.

Both raise only ``FrameError`` on bad input: not JSON, not an object, a missing required key, a
wrong JSON type, a non-finite or physically impossible number. A rejected message changes nothing
(the caller keeps the previous sample). Every check is explicit here because a wrong value that
slips through ends up in charge limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from bmshost.errors import FrameError
from bmshost.model import ALARM_NAMES, SAMPLE_FIELDS, Sample

MAX_CELLS = 64  # no pack the schema describes has more; guards against absurd arrays
MAX_PAYLOAD = 256 * 1024  # bytes; a state message of a 64-cell pack is about 4 KB

# Alarm names the generic schema may carry under "protection" (a subset of the Venus names).
GENERIC_ALARMS: frozenset[str] = frozenset(
    {
        "high_voltage",
        "high_cell_voltage",
        "low_voltage",
        "low_cell_voltage",
        "low_soc",
        "high_charge_current",
        "high_discharge_current",
        "cell_imbalance",
        "internal_failure",
        "high_charge_temperature",
        "low_charge_temperature",
        "high_temperature",
        "low_temperature",
        "high_internal_temperature",
        "fuse_blown",
    }
)
GENERIC_HISTORY: frozenset[str] = frozenset(
    {
        "deepest_discharge",
        "last_discharge",
        "average_discharge",
        "total_ah_drawn",
        "charge_cycles",
        "timestamp_last_full_charge",
        "full_discharges",
        "minimum_voltage",
        "maximum_voltage",
        "minimum_cell_voltage",
        "maximum_cell_voltage",
        "low_voltage_alarms",
        "high_voltage_alarms",
        "minimum_temperature",
        "maximum_temperature",
        "discharged_energy",
        "charged_energy",
    }
)
# Optional generic keys kept in ``Sample.extra`` (the model has no field for them).
_GENERIC_EXTRA_NUMBERS = ("heater_current", "heater_power", "heater_temperature_start",
                          "heater_temperature_stop")


# -- JSON and type helpers ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which are not JSON and never a valid reading.
    raise FrameError(f"not valid JSON: {name} is not a number")


def load_object(payload: bytes | str) -> dict[str, Any]:
    """Decode one payload into a JSON object or raise ``FrameError``."""
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload too large ({len(payload)} bytes, limit {MAX_PAYLOAD})")
    if isinstance(payload, bytes | bytearray):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    else:
        text = payload
    if not text.strip():
        raise FrameError("empty payload")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise FrameError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise FrameError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FrameError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _number(data: Mapping[str, Any], key: str, *, required: bool = False,
            low: float | None = None, high: float | None = None) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FrameError(f"{key}: required key missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FrameError(f"{key}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise FrameError(f"{key}: not a finite number")
    if (low is not None and number < low) or (high is not None and number > high):
        raise FrameError(f"{key}: {number:g} is outside {low}..{high}")
    return number


def _integer(data: Mapping[str, Any], key: str, *, required: bool = False,
             low: int = 0, high: int = 2**31) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FrameError(f"{key}: required key missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"{key}: expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise FrameError(f"{key}: {value} is outside {low}..{high}")
    return value


def _boolean(data: Mapping[str, Any], key: str, *, required: bool = False) -> bool | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FrameError(f"{key}: required key missing")
        return None
    if not isinstance(value, bool):
        raise FrameError(f"{key}: expected true or false, got {type(value).__name__}")
    return value


def _string(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise FrameError(f"{key}: required key missing")
        return None
    if not isinstance(value, str):
        raise FrameError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _alarm_levels(value: Any, key: str, known: frozenset[str]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise FrameError(f"{key}: expected an object, got {type(value).__name__}")
    out: dict[str, int] = {}
    for name, level in value.items():
        if name not in known:
            continue  # the reference ignores unknown alarm keys; so do we
        if isinstance(level, bool) or level not in (0, 1, 2):
            raise FrameError(f"{key}.{name}: alarm level must be 0, 1 or 2, got {level!r}")
        out[name] = int(level)
    return out


# Physical plausibility bounds: wide enough for any pack (48 V racks, 16-cell LFP at -40 °C),
# narrow enough that garbage never becomes a reading.
_VOLTAGE = (0.0, 1000.0)
_CELL = (0.0, 10.0)
_CURRENT = (-10000.0, 10000.0)
_PERCENT = (0.0, 100.0)
_CAPACITY = (0.0, 100000.0)
_TEMP = (-100.0, 200.0)


# -- the reference "generic" schema --------------------------------------------------------------


def parse_generic(data: Mapping[str, Any]) -> Sample:
    """One generic-schema message as a sample (spec §5.4). Raises ``FrameError``."""
    cell_count = _integer(data, "cell_count", required=True, low=1, high=MAX_CELLS)
    capacity = _number(data, "capacity", required=True, low=_CAPACITY[0], high=_CAPACITY[1])
    serial = _string(data, "serial_number", required=True)
    voltage = _number(data, "voltage", required=True, low=_VOLTAGE[0], high=_VOLTAGE[1])
    current = _number(data, "current", required=True, low=_CURRENT[0], high=_CURRENT[1])
    soc = _number(data, "soc", required=True, low=_PERCENT[0], high=_PERCENT[1])
    temperatures = [_number(data, "temperature_1", required=True, low=_TEMP[0], high=_TEMP[1])]
    for key in ("temperature_2", "temperature_3", "temperature_4"):
        temperatures.append(_number(data, key, low=_TEMP[0], high=_TEMP[1]))
    charge_fet = _boolean(data, "charge_fet", required=True)
    discharge_fet = _boolean(data, "discharge_fet", required=True)
    cells, balancing = _generic_cells(data.get("cells"), cell_count)

    extra: dict[str, Any] = {}
    custom = _string(data, "custom_field")
    if custom is not None:
        extra["custom_field"] = custom
    heater_fet = _boolean(data, "heater_fet")
    if heater_fet is not None:
        extra["heater_fet"] = heater_fet
    for key in _GENERIC_EXTRA_NUMBERS:
        number = _number(data, key)
        if number is not None:
            extra[key] = number
    if data.get("history") is not None:
        extra["history"] = _generic_history(data["history"])

    alarms = None
    if data.get("protection") is not None:
        alarms = _alarm_levels(data["protection"], "protection", GENERIC_ALARMS)

    sample = Sample(
        voltage=voltage,
        current=current,
        soc=soc,
        soh=_number(data, "soh", low=_PERCENT[0], high=_PERCENT[1]),
        capacity_ah=capacity,
        remaining_ah=_number(data, "capacity_remain", low=_CAPACITY[0], high=_CAPACITY[1]),
        cell_voltages=cells,
        cell_balancing=balancing,
        # Missing optional sensors are skipped, so indices follow the sensors that report.
        temperatures=[t for t in temperatures if t is not None],
        mosfet_temperature=_number(data, "temperature_mos", low=_TEMP[0], high=_TEMP[1]),
        charge_fet=charge_fet,
        discharge_fet=discharge_fet,
        balance_fet=_boolean(data, "balance_fet"),
        heating=_boolean(data, "heating"),
        bms_charge_current_limit=_number(data, "max_battery_charge_current", low=0.0,
                                         high=_CURRENT[1]),
        bms_discharge_current_limit=_number(data, "max_battery_discharge_current", low=0.0,
                                            high=_CURRENT[1]),
        bms_charge_voltage_limit=_number(data, "max_battery_voltage_bms", low=_VOLTAGE[0],
                                         high=_VOLTAGE[1]),
        bms_discharge_voltage_limit=_number(data, "min_battery_voltage_bms", low=_VOLTAGE[0],
                                            high=_VOLTAGE[1]),
        alarms=alarms,
        serial_number=serial,
        hardware_version=_string(data, "hardware_version"),
        production_date=_string(data, "production"),
        extra=extra or None,
    )
    return sample.fill_derived()


def _generic_cells(value: Any, cell_count: int | None) -> tuple[list[float], list[bool] | None]:
    if value is None:
        raise FrameError("cells: required key missing")
    if not isinstance(value, list):
        raise FrameError(f"cells: expected an array, got {type(value).__name__}")
    if len(value) != cell_count:
        raise FrameError(f"cells: {len(value)} entries but cell_count is {cell_count}")
    voltages: list[float] = []
    balance: list[bool | None] = []
    for i, cell in enumerate(value):
        if not isinstance(cell, dict):
            raise FrameError(f"cells[{i}]: expected an object, got {type(cell).__name__}")
        name = f"cells[{i}]"
        v = _number({f"{name}.voltage": cell.get("voltage")}, f"{name}.voltage", required=True,
                    low=_CELL[0], high=_CELL[1])
        assert v is not None  # required=True
        voltages.append(v)
        balance.append(_boolean({f"{name}.balance": cell.get("balance")}, f"{name}.balance"))
    # A per-cell list is only meaningful when every cell says; otherwise "unknown".
    flags = [b for b in balance if b is not None]
    return voltages, (flags if len(flags) == len(balance) else None)


def _generic_history(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise FrameError(f"history: expected an object, got {type(value).__name__}")
    out: dict[str, float] = {}
    for key in sorted(GENERIC_HISTORY & value.keys()):
        number = _number({f"history.{key}": value[key]}, f"history.{key}")
        if number is not None:
            out[key] = number
    return out


# -- bmshost's own state message -----------------------------------------------------------------

_NUMBER_FIELDS = {
    "voltage": _VOLTAGE, "current": _CURRENT, "power": (-1e7, 1e7), "soc": _PERCENT,
    "soh": _PERCENT, "capacity_ah": _CAPACITY, "remaining_ah": _CAPACITY,
    "mosfet_temperature": _TEMP, "bms_charge_current_limit": (0.0, _CURRENT[1]),
    "bms_discharge_current_limit": (0.0, _CURRENT[1]), "bms_charge_voltage_limit": _VOLTAGE,
    "bms_discharge_voltage_limit": _VOLTAGE, "cell_voltage_min": _CELL, "cell_voltage_max": _CELL,
}
_BOOL_FIELDS = ("charge_fet", "discharge_fet", "balance_fet", "heating")
_STRING_FIELDS = ("serial_number", "hardware_version", "firmware_version", "model",
                  "production_date")
_KNOWN_ALARMS = frozenset(ALARM_NAMES)


class Offline(FrameError):
    """A valid bmshost state message saying its battery is offline or stale: no fresh data."""


def parse_bmshost(data: Mapping[str, Any]) -> Sample:
    """A bmshost MQTT sink state message as the sample it carries. Raises ``FrameError``
    (``Offline`` when the publishing host marks the battery offline or stale)."""
    online = _boolean(data, "online", required=True)
    stale = _boolean(data, "stale")
    if not online or stale:
        raise Offline("the publishing host reports this battery offline or stale")
    values: dict[str, Any] = {}
    for key, (low, high) in _NUMBER_FIELDS.items():
        values[key] = _number(data, key, low=low, high=high)
    for key in _BOOL_FIELDS:
        values[key] = _boolean(data, key)
    for key in _STRING_FIELDS:
        values[key] = _string(data, key)
    values["cycles"] = _integer(data, "cycles")
    values["address"] = _integer(data, "address", high=255)
    for key in ("cell_voltage_min_id", "cell_voltage_max_id", "series_cells"):
        values[key] = _integer(data, key, low=1, high=MAX_CELLS)
    values["cell_voltages"] = _number_list(data, "cell_voltages", _CELL)
    values["temperatures"] = _number_list(data, "temperatures", _TEMP)
    values["cell_balancing"] = _bool_list(data, "cell_balancing")
    values["alarms"] = None
    if data.get("alarms") is not None:
        values["alarms"] = _alarm_levels(data["alarms"], "alarms", _KNOWN_ALARMS)
    extra = data.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise FrameError(f"extra: expected an object, got {type(extra).__name__}")
    values["extra"] = extra
    assert set(values) == set(SAMPLE_FIELDS), "every sample field has a parser"
    return Sample(**values)


def _number_list(
    data: Mapping[str, Any], key: str, bounds: tuple[float, float]
) -> list[float] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_CELLS:
        raise FrameError(f"{key}: expected an array of at most {MAX_CELLS} numbers")
    out: list[float] = []
    for i, item in enumerate(value):
        number = _number({f"{key}[{i}]": item}, f"{key}[{i}]", required=True,
                         low=bounds[0], high=bounds[1])
        assert number is not None  # required=True
        out.append(number)
    return out


def _bool_list(data: Mapping[str, Any], key: str) -> list[bool] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_CELLS:
        raise FrameError(f"{key}: expected an array of at most {MAX_CELLS} booleans")
    if not all(isinstance(v, bool) for v in value):
        raise FrameError(f"{key}: expected an array of true/false")
    return list(value)


# -- format selection ----------------------------------------------------------------------------

FORMATS = ("auto", "generic", "bmshost")


def detect_format(data: Mapping[str, Any]) -> str:
    """``generic`` when the message has the schema's ``cell_count``, ``bmshost`` when it has the
    sink's ``online`` flag; else ``generic`` (whose error names the missing keys)."""
    if "cell_count" in data:
        return "generic"
    if "online" in data:
        return "bmshost"
    return "generic"


def parse_payload(payload: bytes | str, fmt: str = "auto") -> Sample:
    """Decode and validate one MQTT payload. Raises only ``FrameError``."""
    data = load_object(payload)
    if fmt == "auto":
        fmt = detect_format(data)
    if fmt == "generic":
        return parse_generic(data)
    if fmt == "bmshost":
        return parse_bmshost(data)
    raise FrameError(f"unknown payload format {fmt!r} (known: {', '.join(FORMATS)})")


def same_layout(a: Sample, b: Sample) -> bool:
    """Does ``b`` describe the same pack shape as ``a`` (cell count)? A pack does not grow cells:
    a different count means another device publishes on the topic."""
    return a.cell_count is None or b.cell_count is None or a.cell_count == b.cell_count


__all__ = ["FORMATS", "Offline", "detect_format", "load_object", "parse_bmshost",
           "parse_generic", "parse_payload", "same_layout"]
