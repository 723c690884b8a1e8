"""Options of the daly driver (keys of a ``[[batteries]]`` table with ``driver = "daly"``)."""

from __future__ import annotations

from typing import Any

import attrs

# How the raw current word (0.1 A with a 30000 offset) maps to "charging". The sources disagree
# (protocol spec §7.1): Daly's own tools and dbus-serialbattery treat raw < 30000 as charging,
# the BLE "D2" decoders (aiobmsble, esphome) treat raw > 30000 as charging.
CURRENT_SIGNS = ("auto", "charge_below_offset", "charge_above_offset")


def _check_host_address(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not (0x40 <= value <= 0x4F or value == 0x80):
        raise ValueError(f"{attribute.name} must be 0x40..0x4F or 0x80, got {value:#x}")


@attrs.define(slots=True, kw_only=True)
class DalyOptions:
    # "auto": charge_below_offset for the A5 protocol (serial, BLE A5, CAN) as dbus-serialbattery
    # does; charge_above_offset for the BLE Modbus "D2" protocol as both of its decoders do.
    current_sign: str = attrs.field(default="auto", validator=attrs.validators.in_(CURRENT_SIGNS))
    # A5 host address; None = 0x40 + board - 1 (RS485 and BLE modules both answer 0x40).
    host_address: int | None = attrs.field(default=None, validator=_check_host_address)
    # BLE D2: cell-voltage slots before the pack registers (32; "p81" firmware uses 48).
    d2_cell_slots: int = attrs.field(default=32, validator=attrs.validators.in_((32, 48)))


def charge_below_offset(sign: str, protocol: str) -> bool:
    """True when raw values below 30000 mean charging for this protocol ("a5" or "d2")."""
    if sign == "auto":
        return protocol != "d2"
    return sign == "charge_below_offset"


def decode_current(raw: int, below_is_charge: bool) -> float:
    """Raw 0.1 A word with 30000 offset → A, positive = charging (Victron convention)."""
    value = (30000 - raw) / 10 if below_is_charge else (raw - 30000) / 10
    return round(value + 0.0, 1)  # + 0.0 turns -0.0 into 0.0
