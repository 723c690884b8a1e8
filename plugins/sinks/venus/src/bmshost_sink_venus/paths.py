"""Names, text formats and writability of the ``com.victronenergy.battery`` paths (spec §2)."""

from __future__ import annotations

from bmshost.model import ALARM_NAMES, History

from .encoding import Formatter, unit

PRODUCT_ID = 0xBA77  # the id Victron reserved for serial-battery drivers; GUI plugins key on it


def camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


# /Alarms/<Name> for every model alarm name (low_voltage → /Alarms/LowVoltage).
ALARM_PATHS: dict[str, str] = {name: "/Alarms/" + camel(name) for name in ALARM_NAMES}
HISTORY_PATHS: dict[str, str] = {
    field.name: "/History/" + camel(field.name)
    for field in History.__attrs_attrs__  # type: ignore[attr-defined]
}
# Counters Victron devices publish as integers.
HISTORY_INTS = frozenset(
    {
        "charge_cycles",
        "full_discharges",
        "automatic_syncs",
        "low_voltage_alarms",
        "high_voltage_alarms",
        "time_since_last_full_charge",
    }
)
# Decimals of the others: the GUI's history page resolution (0.1 Ah, 10 mV, 1 mV per cell,
# 0.1 °C, 10 Wh). Finer digits would only turn the counters' steady creep into a signal a second.
HISTORY_DIGITS: dict[str, int] = {
    "deepest_discharge": 1,
    "last_discharge": 1,
    "average_discharge": 1,
    "total_ah_drawn": 1,
    "minimum_voltage": 2,
    "maximum_voltage": 2,
    "minimum_cell_voltage": 3,
    "maximum_cell_voltage": 3,
    "minimum_temperature": 1,
    "maximum_temperature": 1,
    "discharged_energy": 2,
    "charged_energy": 2,
}
# (field, path, decimals or None for an integer), in path order.
HISTORY_FIELDS: tuple[tuple[str, str, int | None], ...] = tuple(
    (name, path, None if name in HISTORY_INTS else HISTORY_DIGITS.get(name, 3))
    for name, path in HISTORY_PATHS.items()
)

# Writable paths and what they control (validation lives in writes.py).
CUSTOM_NAME = "/CustomName"
FORCE_CHARGING_OFF = "/Settings/ForceChargingOff"
FORCE_DISCHARGING_OFF = "/Settings/ForceDischargingOff"
TURN_BALANCING_OFF = "/Settings/TurnBalancingOff"
RESET_SOC_TO = "/Settings/ResetSocTo"
RESET_SOC_APPLY = "/Settings/ResetSocToApply"
HISTORY_CLEAR = "/History/Clear"
WRITABLE = frozenset(
    {
        CUSTOM_NAME,
        FORCE_CHARGING_OFF,
        FORCE_DISCHARGING_OFF,
        TURN_BALANCING_OFF,
        RESET_SOC_TO,
        RESET_SOC_APPLY,
        HISTORY_CLEAR,
    }
)

MAX_TEMPERATURE_SENSORS = 4

_V2 = unit("{:.2f}V")
_V3 = unit("{:.3f}V")
_A2 = unit("{:.2f}A")
FORMATS: dict[str, Formatter] = {
    "/Dc/0/Voltage": _V2,
    "/Dc/0/Current": _A2,
    "/Dc/0/Power": unit("{:.0f}W"),
    "/Dc/0/Temperature": unit("{:.1f}°C"),
    "/Dc/0/MidVoltage": _V2,
    "/Dc/0/MidVoltageDeviation": unit("{:.1f}%"),
    "/CurrentAvg": _A2,
    "/Soc": unit("{:.1f}%"),
    "/SocBms": unit("{:.1f}%"),
    "/Soh": unit("{:.0f}%"),
    "/Capacity": unit("{:.2f}Ah"),
    "/InstalledCapacity": unit("{:.0f}Ah"),
    "/ConsumedAmphours": unit("{:.0f}Ah"),
    "/System/MinCellVoltage": _V3,
    "/System/MaxCellVoltage": _V3,
    "/Voltages/Sum": _V2,
    "/Voltages/Diff": _V3,
    "/Cell/Sum": _V2,
    "/Cell/Diff": _V3,
    "/Info/BatteryLowVoltage": _V2,
    "/Info/MaxChargeVoltage": _V2,
    "/Info/MaxChargeCellVoltage": _V3,
    "/Info/MaxChargeCurrent": _A2,
    "/Info/MaxDischargeCurrent": _A2,
    "/TimeToGo": unit("{}s"),
}


def cell_voltage_paths(n: int, cell_format: int) -> list[str]:
    """Voltage paths of cell ``n`` (1-based) for ``cell_data_format`` 0..3."""
    out = []
    if cell_format in (1, 3):
        out.append(f"/Voltages/Cell{n}")
    if cell_format in (2, 3):
        out.append(f"/Cell/{n}/Volts")
    return out


def formatter_for(path: str) -> Formatter | None:
    """The text format of ``path`` including the generated cell paths."""
    fmt = FORMATS.get(path)
    if fmt is not None:
        return fmt
    if path.startswith("/Voltages/Cell") or (path.startswith("/Cell/") and path.endswith("/Volts")):
        return _V3
    if path.startswith("/System/Temperature") and not path.endswith("Name"):
        return unit("{:.1f}°C")
    return None
