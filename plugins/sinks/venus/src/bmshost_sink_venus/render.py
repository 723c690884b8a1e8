"""A battery's state as Venus paths: ``BatteryUpdate`` → ``{path: value}``.

Pure and clock-free: everything comes from the update and the battery's ``Face`` (identity,
instance, the user's switches). Paths the data cannot fill are ``None`` (published invalid),
never a made-up value. Rounding here is deliberate: it is what the GUIs show, and it keeps
measurement noise below the display resolution from turning into D-Bus traffic.

``render`` gives every path; the sink's cycle uses ``render_changed``, which leaves out the
groups of paths (identity, limits/alarms/state, history) whose inputs are equal to those they
were last rendered from: their values were handed over then and cannot have changed since.
The inputs are compared by value *and* type wherever a value is published as it comes (an
alarm level of ``True`` goes out as a boolean, ``1`` as an integer), and mutable inputs are
copied when remembered, so a dict or object changed in place is still noticed.
"""

from __future__ import annotations

import math
import operator
import os
import sys
from typing import Any

import attrs

from bmshost import __version__
from bmshost.capabilities import Capability
from bmshost.model import Derived, History, Limits, Sample
from bmshost.sink import BatteryUpdate

from . import paths as P
from .encoding import Value

# /State values the service generates, and /ErrorCode texts from the veutil BMS error table.
STATE_INITIALIZING, STATE_RUNNING, STATE_ERROR, STATE_STANDBY = 0, 9, 10, 14
MODE_ON, MODE_OFF, MODE_STANDBY = 3, 4, 0xFC
ERROR_BMS_CABLE = 32


@attrs.define(kw_only=True)
class Face:
    """What the service knows about its battery besides the update (mutable: user writes)."""

    driver: str
    unique_id: str
    port: str
    connection: str
    capabilities: frozenset[Capability]
    device_instance: int
    product_name: str
    insecure: bool = False
    custom_name: str = ""
    force_charging_off: int = 0
    force_discharging_off: int = 0
    turn_balancing_off: int = 0
    reset_soc_to: int = 100
    soc_reset_paths: bool = False
    cell_format: int = 1
    # High-water marks so paths, once created, keep existing (invalid when the data goes away).
    cells: int = 0
    temperature_sensors: int = 0
    time_to_soc_points: tuple[int, ...] = ()
    # CCL/DCL never go invalid once published: aggregators do arithmetic on them.
    last_ccl: float | None = None
    last_dcl: float | None = None
    # (voltage paths, balance path) per cell for (cells, cell_format): built once, not per cycle
    cell_paths: list[tuple[tuple[str, ...], str | None]] = attrs.field(factory=list, repr=False)
    cell_paths_key: tuple[int, int] = (0, -1)


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _i(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


PROCESS_NAME = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "bmshost"


def render(update: BatteryUpdate, face: Face) -> dict[str, Value]:
    """Every path of the service with its value for this cycle."""
    s = update.sample or Sample()
    d = update.derived or Derived()
    lim = update.limits or Limits()
    out: dict[str, Value] = {}
    _identity(out, s, face, update)
    _measurements(out, s, d, update)
    _cells(out, s, face)
    _system(out, s, d, face, update)
    _limits(out, s, lim, face, update)
    _heating(out, s)
    _alarms(out, s, d, update)
    _state(out, update)
    _history(out, s, d)
    _time(out, d, face)
    _settings(out, face)
    return out


_NEVER: Any = object()


@attrs.define
class RenderCache:
    """What each slow-changing group was last rendered from (``render_changed``). One per set of
    values handed over: a fresh cache whenever the service starts again from a full render."""

    identity: Any = _NEVER
    control: Any = _NEVER
    history: Any = _NEVER


# Everything the groups read, field by field (a whole object where the group reads most of it).
_FACE_IDENTITY = operator.attrgetter(
    "connection", "insecure", "device_instance", "product_name", "driver", "unique_id", "custom_name"
)
_SAMPLE_IDENTITY = operator.attrgetter("firmware_version", "hardware_version", "model", "serial_number")
_SAMPLE_CONTROL = operator.attrgetter(
    "bms_discharge_voltage_limit", "charge_fet", "discharge_fet", "balance_fet"
)
_LIMITS_ALL = operator.attrgetter(*(f.name for f in attrs.fields(Limits)))
_HISTORY_ALL = operator.attrgetter(*(f.name for f in attrs.fields(History)))


def _types(values: Any) -> tuple[type, ...]:
    return tuple(map(type, values))


def _copied(alarms: dict[str, int] | None) -> dict[str, int] | None:
    return None if alarms is None else dict(alarms)


def render_changed(update: BatteryUpdate, face: Face, cache: RenderCache) -> dict[str, Value]:
    """The paths of ``render`` that may differ from the previous call with ``cache``: the same
    values in the same order, less the groups whose inputs are unchanged (equal value and type)."""
    s = update.sample or Sample()
    d = update.derived or Derived()
    lim = update.limits or Limits()
    out: dict[str, Value] = {}
    stale = update.stale
    # identity: published as they come (strings), so their types are part of the key
    ident = _SAMPLE_IDENTITY(s)
    key: Any = (stale, update.connection_info, _FACE_IDENTITY(face), ident, _types(ident))
    if key != cache.identity:
        cache.identity = key
        _identity(out, s, face, update)
    _measurements(out, s, d, update)
    _cells(out, s, face)
    _system(out, s, d, face, update)
    # limits, alarms and the state derived from both (alarm levels go out as they come)
    bms, driver = s.alarms, d.alarms
    key = (
        stale,
        update.sample is None,
        _LIMITS_ALL(lim),
        _SAMPLE_CONTROL(s),
        len(s.cell_voltages or ()),
        face.last_ccl,
        face.last_dcl,
        bms,
        driver,
        None if bms is None else _types(bms.values()),
        None if driver is None else _types(driver.values()),
    )
    control = key != cache.control
    if control:
        cache.control = (*key[:7], _copied(bms), _copied(driver), *key[9:])  # not the live dicts
        _limits(out, s, lim, face, update)
    _heating(out, s)  # always: cheap, and read from the driver's free-form extras
    if control:
        _alarms(out, s, d, update)
        _state(out, update)
    h = d.history
    key = (None if h is None else _HISTORY_ALL(h), s.cycles)  # (published as int or rounded float)
    if key != cache.history:
        cache.history = key
        _history(out, s, d)
    _time(out, d, face)
    _settings(out, face)
    return out


def _identity(out: dict[str, Value], s: Sample, face: Face, update: BatteryUpdate) -> None:
    out["/Mgmt/ProcessName"] = PROCESS_NAME
    out["/Mgmt/ProcessVersion"] = f"bmshost {__version__}"
    out["/Mgmt/Connection"] = face.connection
    if face.insecure:
        out["/Mgmt/InsecureConnection"] = 1
    out["/DeviceInstance"] = face.device_instance
    out["/ProductId"] = P.PRODUCT_ID
    out["/ProductName"] = face.product_name
    out["/FirmwareVersion"] = s.firmware_version
    out["/HardwareVersion"] = _first(s.hardware_version, s.model)
    out["/Family"] = _first(s.model, s.hardware_version)
    out["/Manufacturer"] = face.driver
    out["/Serial"] = face.unique_id
    out["/DeviceName"] = s.serial_number
    # The truth: 0 once no good read arrived within the staleness timeout.
    out["/Connected"] = 0 if update.stale else 1
    out["/CustomName"] = face.custom_name
    out["/ConnectionInformation"] = update.connection_info or None


def _measurements(out: dict[str, Value], s: Sample, d: Derived, update: BatteryUpdate) -> None:
    lost = update.stale
    current = _first(d.current, s.current)
    voltage = s.voltage
    power = s.power
    if d.current is not None and voltage is not None:
        power = voltage * d.current  # the corrected current is the one shown
    out["/Dc/0/Voltage"] = None if lost else _r(voltage, 2)
    out["/Dc/0/Current"] = None if lost else _r(current, 2)
    out["/Dc/0/Power"] = None if lost else _r(power, 2)
    temps = s.temperatures or []
    battery_temp = _first(d.battery_temperature, sum(temps) / len(temps) if temps else None)
    out["/Dc/0/Temperature"] = _r(battery_temp, 1)
    out["/Dc/0/MidVoltage"] = _r(d.midpoint_voltage, 2)
    out["/Dc/0/MidVoltageDeviation"] = _r(d.midpoint_deviation, 1)
    out["/CurrentAvg"] = _r(d.current_avg, 2)
    out["/Soc"] = _r(_first(d.soc, s.soc), 2)
    out["/SocBms"] = _r(_first(d.soc_bms, s.soc), 2)
    out["/Soh"] = _r(s.soh, 2)
    remaining = _first(d.remaining_ah, s.remaining_ah)
    out["/Capacity"] = _r(remaining, 2)
    out["/InstalledCapacity"] = _r(s.capacity_ah, 2)
    consumed = d.consumed_ah
    if consumed is None and s.capacity_ah is not None and remaining is not None:
        consumed = -(s.capacity_ah - remaining)
    out["/ConsumedAmphours"] = _r(consumed, 2)


def _cell_paths(face: Face) -> list[tuple[tuple[str, ...], str | None]]:
    key = (face.cells, face.cell_format)
    if face.cell_paths_key != key:
        fmt = face.cell_format
        face.cell_paths = [
            (tuple(P.cell_voltage_paths(n, fmt)), f"/Balances/Cell{n}" if fmt in (1, 3) else None)
            for n in range(1, face.cells + 1)
        ]
        face.cell_paths_key = key
    return face.cell_paths


def _cells(out: dict[str, Value], s: Sample, face: Face) -> None:
    # The hottest part of a cycle (a path or two per cell): no helper calls per cell.
    cells = s.cell_voltages or []
    count = len(cells)
    if count > face.cells:
        face.cells = count
    balancing = s.cell_balancing or []
    balancers = len(balancing)
    volts = [round(v + 0.0, 3) for v in cells]  # + 0.0: an int from a driver goes out as a double
    for i, (voltage_paths, balance_path) in enumerate(_cell_paths(face)):
        value = volts[i] if i < count else None
        for path in voltage_paths:
            out[path] = value
        if balance_path is not None:
            out[balance_path] = int(balancing[i]) if i < balancers else None
    fmt = face.cell_format
    total = _r(sum(cells), 2) if cells else None
    if cells:
        diff = _r(max(cells) - min(cells), 3)
    elif s.cell_voltage_min is not None and s.cell_voltage_max is not None:
        diff = _r(s.cell_voltage_max - s.cell_voltage_min, 3)  # a BMS that sends only extremes
    else:
        diff = None
    if fmt in (1, 3):
        out["/Voltages/Sum"], out["/Voltages/Diff"] = total, diff
    if fmt in (2, 3):
        out["/Cell/Sum"], out["/Cell/Diff"] = total, diff
    out["/Balancing"] = int(any(balancing)) if balancing else None


def _system(
    out: dict[str, Value], s: Sample, d: Derived, face: Face, update: BatteryUpdate
) -> None:
    cells = s.cell_voltages or []
    out["/System/NrOfCellsPerBattery"] = len(cells) if cells else s.series_cells
    out["/System/NrOfModulesOnline"] = 0 if update.stale else 1
    out["/System/NrOfModulesOffline"] = 1 if update.stale else 0
    if cells:
        lo, hi = min(cells), max(cells)
        out["/System/MinCellVoltage"], out["/System/MaxCellVoltage"] = _r(lo, 3), _r(hi, 3)
        out["/System/MinVoltageCellId"] = f"C{cells.index(lo) + 1}"
        out["/System/MaxVoltageCellId"] = f"C{cells.index(hi) + 1}"
    else:
        # a BMS that reports only its extremes (JBD CAN, JK CAN v1): those, never invented cells
        low_id, high_id = s.cell_voltage_min_id, s.cell_voltage_max_id
        out["/System/MinCellVoltage"] = _r(s.cell_voltage_min, 3)
        out["/System/MaxCellVoltage"] = _r(s.cell_voltage_max, 3)
        out["/System/MinVoltageCellId"] = f"C{low_id}" if low_id else None
        out["/System/MaxVoltageCellId"] = f"C{high_id}" if high_id else None
    temps = (s.temperatures or [])[: P.MAX_TEMPERATURE_SENSORS]
    face.temperature_sensors = max(face.temperature_sensors, len(temps))
    for n in range(1, face.temperature_sensors + 1):
        out[f"/System/Temperature{n}"] = _r(temps[n - 1], 1) if n <= len(temps) else None
        out[f"/System/Temperature{n}Name"] = f"Temp {n}"
    if temps:
        lo_t, hi_t = min(temps), max(temps)
        out["/System/MinCellTemperature"] = _r(_first(d.min_temperature, lo_t), 1)
        out["/System/MaxCellTemperature"] = _r(_first(d.max_temperature, hi_t), 1)
        # The temperature stage names the sensors (configured names); else number them.
        out["/System/MinTemperatureCellId"] = d.min_temperature_id or f"Temp {temps.index(lo_t) + 1}"
        out["/System/MaxTemperatureCellId"] = d.max_temperature_id or f"Temp {temps.index(hi_t) + 1}"
    else:
        out["/System/MinCellTemperature"] = _r(d.min_temperature, 1)
        out["/System/MaxCellTemperature"] = _r(d.max_temperature, 1)
        out["/System/MinTemperatureCellId"] = None
        out["/System/MaxTemperatureCellId"] = None
    out["/System/MOSTemperature"] = _r(s.mosfet_temperature, 1)


def _limits(
    out: dict[str, Value], s: Sample, lim: Limits, face: Face, update: BatteryUpdate
) -> None:
    ccl, dcl = lim.ccl, lim.dcl
    if update.stale:
        # The control stages own the safe state; should none have run, stop both directions.
        ccl = 0.0 if ccl is None else ccl
        dcl = 0.0 if dcl is None else dcl
    ccl = face.last_ccl if ccl is None else ccl
    dcl = face.last_dcl if dcl is None else dcl
    face.last_ccl, face.last_dcl = ccl, dcl
    cells = len(s.cell_voltages or [])
    low = lim.battery_low_voltage if lim.battery_low_voltage is not None else s.bms_discharge_voltage_limit
    out["/Info/BatteryLowVoltage"] = _r(low, 2)
    out["/Info/MaxChargeVoltage"] = _r(lim.cvl, 2)
    if lim.max_charge_cell_voltage is not None:
        out["/Info/MaxChargeCellVoltage"] = _r(lim.max_charge_cell_voltage, 3)
    else:
        out["/Info/MaxChargeCellVoltage"] = _r(lim.cvl / cells, 3) if lim.cvl is not None and cells else None
    out["/Info/MaxChargeCurrent"] = _r(ccl, 2)
    out["/Info/MaxDischargeCurrent"] = _r(dcl, 2)
    out["/Info/ChargeMode"] = lim.charge_mode
    # Filled by the sink when charge_mode_debug is on (debug.py); "" as the reference has it.
    out["/Info/ChargeModeDebug"] = out["/Info/ChargeModeDebugFloat"] = ""
    out["/Info/ChargeModeDebugBulk"] = ""
    out["/Info/ChargeLimitation"] = lim.charge_limitation
    out["/Info/DischargeLimitation"] = lim.discharge_limitation
    allow_charge = lim.allow_to_charge
    if allow_charge is None and s.charge_fet is not None and ccl is not None:
        allow_charge = s.charge_fet and ccl > 0
    allow_discharge = lim.allow_to_discharge
    if allow_discharge is None and s.discharge_fet is not None and dcl is not None:
        allow_discharge = s.discharge_fet and dcl > 0
    out["/Io/AllowToCharge"] = _i(allow_charge)
    out["/Io/AllowToDischarge"] = _i(allow_discharge)
    out["/Io/AllowToBalance"] = _i(s.balance_fet)
    out["/System/NrOfModulesBlockingCharge"] = (
        None if allow_charge is None else int(not allow_charge)
    )
    out["/System/NrOfModulesBlockingDischarge"] = (
        None if allow_discharge is None else int(not allow_discharge)
    )


def _number(extra: dict[str, Any], key: str, digits: int) -> float | None:
    value = extra.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None  # a driver's extra value is not validated by the model: never trust its type
    return round(float(value), digits)


def _heating(out: dict[str, Value], s: Sample) -> None:
    """Spec §2.6/§2.7: what the BMS says about its heater (none of them lets us switch it)."""
    extra = s.extra or {}
    heater_fet = extra.get("heater_fet")
    out["/Heating"] = s.heating
    out["/Io/AllowToHeat"] = int(heater_fet) if isinstance(heater_fet, bool) else None
    out["/Info/HeatingCurrent"] = _number(extra, "heater_current", 2)
    out["/Info/HeatingPower"] = _number(extra, "heater_power", 1)
    out["/Info/HeatingTemperatureStart"] = _number(extra, "heater_temperature_start", 1)
    out["/Info/HeatingTemperatureStop"] = _number(extra, "heater_temperature_stop", 1)


def _alarms(out: dict[str, Value], s: Sample, d: Derived, update: BatteryUpdate) -> None:
    bms = s.alarms or {}
    driver = d.alarms or {}
    for name, path in P.ALARM_PATHS.items():
        level = bms.get(name)
        other = driver.get(name)
        if other is not None and (level is None or other > level):
            level = other
        out[path] = level  # worst level wins; unknown stays invalid
    if out["/Alarms/BmsCable"] is None:
        # Nobody else judged the link: losing the BMS is an alarm, a live link is not.
        out["/Alarms/BmsCable"] = 2 if update.stale else 0


def _state(out: dict[str, Value], update: BatteryUpdate) -> None:
    charge = out["/Io/AllowToCharge"]
    discharge = out["/Io/AllowToDischarge"]
    if update.sample is None and not update.stale:
        state, mode = STATE_INITIALIZING, MODE_ON
    elif update.stale:
        state, mode = STATE_ERROR, MODE_ON
    elif charge == 0 and discharge == 0:
        state, mode = STATE_STANDBY, MODE_STANDBY
    else:
        state, mode = STATE_RUNNING, MODE_ON
    out["/State"] = state
    out["/Mode"] = mode
    out["/ErrorCode"] = ERROR_BMS_CABLE if update.stale else None
    merged = {name: out[path] for name, path in P.ALARM_PATHS.items()}
    if merged.get("internal_failure") == 2:
        device_state = 0x103
    elif 2 in (merged.get("high_temperature"), merged.get("high_charge_temperature")):
        device_state = 0x101
    elif 1 in (merged.get("high_temperature"), merged.get("high_charge_temperature")):
        device_state = 0x102
    elif merged.get("low_voltage") == 2:
        device_state = 0x105
    elif charge == 0 and discharge == 0:
        device_state = 0x104
    else:
        device_state = 0x100
    out["/DeviceState"] = device_state


def _history(out: dict[str, Value], s: Sample, d: Derived) -> None:
    h = d.history
    for name, path, digits in P.HISTORY_FIELDS:
        value = getattr(h, name) if h is not None else None
        if name == "charge_cycles" and value is None:
            value = s.cycles
        if value is not None:
            value = int(value) if digits is None else round(float(value), digits)
        out[path] = value
    out[P.HISTORY_CLEAR] = 0
    out["/History/CanBeCleared"] = 1 if h is not None else 0


def _time(out: dict[str, Value], d: Derived, face: Face) -> None:
    out["/TimeToGo"] = None if d.time_to_go is None else int(d.time_to_go)
    points = d.time_to_soc or {}
    if points and not set(points) <= set(face.time_to_soc_points):
        face.time_to_soc_points = tuple(sorted(set(face.time_to_soc_points) | set(points)))
    for p in face.time_to_soc_points:
        seconds = points.get(p)
        out[f"/TimeToSoC/{p}"] = None if seconds is None else int(seconds)


def _settings(out: dict[str, Value], face: Face) -> None:
    caps = face.capabilities
    out["/Settings/HasTemperature"] = 1
    out["/Settings/HasSettings"] = 1
    # A switch the battery cannot perform is invalid (and refuses writes).
    out[P.FORCE_CHARGING_OFF] = (
        face.force_charging_off if Capability.DISABLE_CHARGING in caps else None
    )
    out[P.FORCE_DISCHARGING_OFF] = (
        face.force_discharging_off if Capability.DISABLE_DISCHARGING in caps else None
    )
    out[P.TURN_BALANCING_OFF] = (
        face.turn_balancing_off if Capability.DISABLE_BALANCING in caps else None
    )
    out[P.RESET_SOC_TO] = face.reset_soc_to if face.soc_reset_paths else None
    out[P.RESET_SOC_APPLY] = 0 if face.soc_reset_paths else None
