"""The data model every plugin speaks: samples, limits, identity, commands.

A ``Sample`` is what one read of a BMS produced. Drivers fill only what the BMS says; a field the
BMS does not provide stays ``None`` (absent from JSON), never a made-up value. Units are fixed and
SI-ish; current is positive when the battery charges (Victron convention).

JSON field names are a contract (architecture brief §6): ``to_json_dict`` emits exactly them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

# Venus OS alarm names (``/Alarms/<Name>``) in snake case. Values: 0 ok, 1 warning, 2 alarm.
ALARM_NAMES: tuple[str, ...] = (
    "low_voltage",
    "high_voltage",
    "low_cell_voltage",
    "high_cell_voltage",
    "low_soc",
    "state_of_health",
    "high_charge_current",
    "high_discharge_current",
    "high_current",
    "cell_imbalance",
    "internal_failure",
    "high_charge_temperature",
    "low_charge_temperature",
    "high_temperature",
    "low_temperature",
    "high_internal_temperature",
    "fuse_blown",
    "bms_cable",
)
_ALARM_SET = frozenset(ALARM_NAMES)


class AlarmLevel(enum.IntEnum):
    OK = 0
    WARNING = 1
    ALARM = 2


def _check_alarms(_: object, attribute: attrs.Attribute[Any], value: Mapping[str, int]) -> None:
    for name, level in value.items():
        if name not in _ALARM_SET:
            raise ValueError(f"{attribute.name}: unknown alarm name {name!r}")
        if level not in (0, 1, 2):
            raise ValueError(f"{attribute.name}: alarm {name!r} level must be 0, 1 or 2")


# Fields in the order they are printed; the names are the JSON contract.
SAMPLE_FIELDS: tuple[str, ...] = (
    "voltage",
    "current",
    "power",
    "soc",
    "soh",
    "capacity_ah",
    "remaining_ah",
    "cycles",
    "cell_voltages",
    "cell_balancing",
    "cell_voltage_min",
    "cell_voltage_max",
    "cell_voltage_min_id",
    "cell_voltage_max_id",
    "series_cells",
    "temperatures",
    "mosfet_temperature",
    "charge_fet",
    "discharge_fet",
    "balance_fet",
    "heating",
    "bms_charge_current_limit",
    "bms_discharge_current_limit",
    "bms_charge_voltage_limit",
    "bms_discharge_voltage_limit",
    "alarms",
    "serial_number",
    "hardware_version",
    "firmware_version",
    "model",
    "production_date",
    "address",
    "extra",
)


# on_setattr=NO_OP: validators run at construction only; the poll loop assigns fields freely and
# attrs' per-assignment hooks would cost more than the rest of a cycle's bookkeeping.
@attrs.define(slots=True, kw_only=True, on_setattr=attrs.setters.NO_OP)
class Sample:
    """One read of a battery. Every field is optional; ``None`` means "the BMS did not say"."""

    voltage: float | None = None  # V, pack
    current: float | None = None  # A, + = charging
    power: float | None = None  # W; derived from voltage × current when the BMS does not say
    soc: float | None = None  # %
    soh: float | None = None  # %
    capacity_ah: float | None = None  # installed (full) capacity
    remaining_ah: float | None = None
    cycles: int | None = None
    cell_voltages: list[float] | None = None  # V, cell 1 first
    cell_balancing: list[bool] | None = None  # per cell, cell 1 first
    # The BMS's own lowest/highest cell (V) and their 1-based cell numbers: what BMSes that send
    # only the extremes (JBD CAN, JK CAN v1, ...) give, or what some send besides the list.
    cell_voltage_min: float | None = None
    cell_voltage_max: float | None = None
    cell_voltage_min_id: int | None = None
    cell_voltage_max_id: int | None = None
    # cells in series when ``cell_voltages`` is absent (reported, or latched by the driver from a
    # confident estimate; see ``bmshost.cellcount``); the control stages need it for CVL
    series_cells: int | None = None
    temperatures: list[float] | None = None  # °C, battery sensors (not the MOSFET)
    mosfet_temperature: float | None = None  # °C
    charge_fet: bool | None = None
    discharge_fet: bool | None = None
    balance_fet: bool | None = None  # the balancer is allowed to run
    heating: bool | None = None
    bms_charge_current_limit: float | None = None  # A, what the BMS itself allows
    bms_discharge_current_limit: float | None = None
    bms_charge_voltage_limit: float | None = None  # V
    bms_discharge_voltage_limit: float | None = None
    alarms: dict[str, int] | None = attrs.field(default=None, validator=attrs.validators.optional(_check_alarms))
    serial_number: str | None = None
    hardware_version: str | None = None
    firmware_version: str | None = None
    model: str | None = None
    production_date: str | None = None  # ISO date
    address: int | None = None  # for daisy-chained packs
    extra: dict[str, Any] | None = None  # family-specific values (counters, raw flags)

    # -- merging -------------------------------------------------------------------------------

    def merge(self, other: Sample) -> Sample:
        """Return a copy of self with every field that ``other`` sets taken from ``other``.

        Several frames of one read (basic info + cells + version) each give a partial sample;
        merging them gives the read's sample. Alarms and extras are merged key by key.
        """
        # Both inputs were validated when built, so the result is assembled without __init__
        # (this runs several times per poll cycle).
        out = object.__new__(Sample)
        for name in SAMPLE_FIELDS:
            mine = getattr(self, name)
            theirs = getattr(other, name)
            if theirs is None:
                value = mine
            elif mine and name in ("alarms", "extra"):
                value = {**mine, **theirs}
            else:
                value = theirs
            object.__setattr__(out, name, value)
        return out

    def fill_derived(self) -> Sample:
        """Fill values that follow from others (power) without inventing data."""
        if self.power is None and self.voltage is not None and self.current is not None:
            self.power = round(self.voltage * self.current, 3)
        return self

    # -- convenience ---------------------------------------------------------------------------

    @property
    def cell_count(self) -> int | None:
        """Cells in series: the list's length, else what the BMS or driver says."""
        return len(self.cell_voltages) if self.cell_voltages else self.series_cells

    @property
    def min_cell_voltage(self) -> float | None:
        cells = self.cell_voltages
        return min(cells) if cells else self.cell_voltage_min

    @property
    def max_cell_voltage(self) -> float | None:
        cells = self.cell_voltages
        return max(cells) if cells else self.cell_voltage_max

    def to_json_dict(self) -> dict[str, Any]:
        """The contract JSON object: set fields only, in ``SAMPLE_FIELDS`` order."""
        out: dict[str, Any] = {}
        for name in SAMPLE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Sample:
        """Inverse of ``to_json_dict``; unknown keys are an error."""
        unknown = set(data) - set(SAMPLE_FIELDS)
        if unknown:
            raise ValueError(f"unknown sample field(s): {', '.join(sorted(unknown))}")
        return cls(**dict(data))


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@attrs.define(slots=True, kw_only=True)
class Limits:
    """What the control pipeline tells chargers and inverters, and why.

    ``None`` means "not computed" (no control stage ran, e.g. before the first sample).
    """

    cvl: float | None = None  # charge voltage limit, V
    ccl: float | None = None  # charge current limit, A
    dcl: float | None = None  # discharge current limit, A
    charge_mode: str | None = None  # e.g. "Bulk", "Absorption", "Float"
    charge_limitation: str | None = None  # reason text for CCL
    discharge_limitation: str | None = None  # reason text for DCL
    cvl_set_by: str | None = None  # stage name that set the final value
    ccl_set_by: str | None = None
    dcl_set_by: str | None = None
    allow_to_charge: bool | None = None
    allow_to_discharge: bool | None = None
    max_charge_cell_voltage: float | None = None  # V, /Info/MaxChargeCellVoltage
    battery_low_voltage: float | None = None  # V, /Info/BatteryLowVoltage (min cell × cells)

    def to_json_dict(self) -> dict[str, Any]:
        return _set_fields(self, _LIMITS_FIELDS)


@attrs.frozen(slots=True, kw_only=True)
class Identity:
    """Who a battery is, stable across reboots and port renames (used for instance allocation)."""

    driver: str
    variant: str
    port: str
    address: int | None = None
    serial_number: str | None = None

    @property
    def unique_id(self) -> str:
        """Serial number when the BMS has one; else port plus address."""
        if self.serial_number:
            base = f"{self.driver}_{self.serial_number}"
        else:
            port = self.port.removeprefix("/dev/").replace("/", "_").replace(":", "_")
            base = f"{self.driver}_{port}"
        if self.address is not None:
            base += f"_{self.address:02x}"
        return "".join(c if c.isalnum() or c in "_-." else "_" for c in base)


class CommandKind(enum.Enum):
    """Writes a sink may ask a battery to perform. Each maps to one capability."""

    CHARGE_FET = "charge_fet"  # value: bool (True = allowed)
    DISCHARGE_FET = "discharge_fet"  # value: bool
    BALANCE = "balance"  # value: bool
    SOC_RESET = "soc_reset"  # value: float, % (what to set the BMS SoC to)


@attrs.frozen(slots=True)
class Command:
    kind: CommandKind
    value: bool | float
    origin: str = "?"  # who asked (sink name), for the log


@attrs.frozen(slots=True)
class CommandResult:
    ok: bool
    message: str = ""


def alarms_from_bits(bits: int, table: Mapping[int, str], level: int = 2) -> dict[str, int]:
    """Map a protection word to Venus alarm names: every name the table knows is reported, 0 when
    its bits are clear, ``level`` when one is set (several bits may share a name)."""
    out: dict[str, int] = {}
    for bit, name in table.items():
        hit = level if bits >> bit & 1 else 0
        out[name] = max(out.get(name, 0), hit)
    return out


def worst(levels: Iterable[int]) -> int:
    return max(levels, default=0)


@attrs.define(slots=True, kw_only=True)
class History:
    """Lifetime counters (Venus ``/History/*``). Ah values are negative, as Victron publishes them."""

    deepest_discharge: float | None = None  # Ah, negative
    last_discharge: float | None = None  # Ah, negative
    average_discharge: float | None = None  # Ah, negative
    charge_cycles: float | None = None
    full_discharges: int | None = None
    total_ah_drawn: float | None = None  # Ah, negative
    minimum_voltage: float | None = None
    maximum_voltage: float | None = None
    minimum_cell_voltage: float | None = None
    maximum_cell_voltage: float | None = None
    time_since_last_full_charge: float | None = None  # s
    automatic_syncs: int | None = None
    low_voltage_alarms: int | None = None
    high_voltage_alarms: int | None = None
    minimum_temperature: float | None = None
    maximum_temperature: float | None = None
    discharged_energy: float | None = None  # kWh
    charged_energy: float | None = None  # kWh

    def to_json_dict(self) -> dict[str, Any]:
        return _set_fields(self, _HISTORY_FIELDS)


@attrs.define(slots=True, kw_only=True)
class Derived:
    """Values the control stages compute from samples (not read from the BMS).

    Sinks publish these next to the sample: ``soc`` is the effective SoC (BMS, coulomb-counted or
    external) and replaces the sample's SoC on the outputs; ``soc_bms`` keeps the raw BMS value.
    """

    soc: float | None = None
    soc_bms: float | None = None
    remaining_ah: float | None = None  # effective remaining capacity
    consumed_ah: float | None = None  # negative, −(capacity − remaining)
    current: float | None = None  # after correction map / external sensor
    current_avg: float | None = None  # mean over ~5 minutes
    time_to_go: float | None = None  # s
    time_to_soc: dict[int, float] | None = None  # SoC point (%) -> seconds
    midpoint_voltage: float | None = None
    midpoint_deviation: float | None = None  # %
    battery_temperature: float | None = None  # selected/calibrated sensor mean
    min_temperature: float | None = None
    max_temperature: float | None = None
    min_temperature_id: str | None = None  # name of the sensor holding the minimum
    max_temperature_id: str | None = None
    history: History | None = None
    alarms: dict[str, int] | None = None  # driver-raised alarms (merged with the BMS's)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _DERIVED_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, History):
                value = value.to_json_dict()
            elif name == "time_to_soc":
                value = {str(k): v for k, v in value.items()}
            out[name] = value
        return out


def _set_fields(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields of ``obj`` that are set, by name (cheaper than attrs.asdict every cycle)."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if value is not None:
            out[name] = value
    return out


_LIMITS_FIELDS = tuple(f.name for f in attrs.fields(Limits))
_HISTORY_FIELDS = tuple(f.name for f in attrs.fields(History))
_DERIVED_FIELDS = tuple(f.name for f in attrs.fields(Derived))
