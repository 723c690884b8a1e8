"""Bluetooth LE advertisement matching: which driver variant claims a device seen in a scan.

This lives in the core (not in the BLE transport) so that a BMS plugin can declare its matchers on
its ``VariantSpec`` as plain data without depending on bleak or on the transport distribution, and
so that ``bmshost scan ble`` needs no driver module imported to know who claims what. Every field a
matcher sets must match; a variant claims a device when any one of its matchers does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

BLUETOOTH_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def normalize_uuid(text: str) -> str:
    """``ff01`` / ``0xFF01`` / ``0000ff01`` / a 128-bit UUID → the full lower-case 128-bit form.

    Raises ``ValueError`` for anything that is not 16-, 32- or 128-bit hex.
    """
    raw = text.strip().lower().removeprefix("0x")
    if len(raw) in (4, 8) and _is_hex(raw):
        return f"{int(raw, 16):08x}{BLUETOOTH_BASE_SUFFIX}"
    plain = raw.replace("-", "")
    if len(plain) == 32 and _is_hex(plain):
        return f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}"
    raise ValueError(f"not a Bluetooth UUID: {text!r}")


@attrs.frozen(kw_only=True)
class Advertisement:
    """What a scan saw of one device."""

    address: str
    local_name: str | None = None
    rssi: int | None = None
    service_uuids: tuple[str, ...] = ()
    manufacturer_data: Mapping[int, bytes] = attrs.field(factory=dict)


def _oui(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.upper().replace("-", ":")
    parts = text.split(":")
    if len(parts) != 3 or not all(len(p) == 2 and _is_hex(p) for p in parts):
        raise ValueError(f"OUI must look like A4:C1:38, not {value!r}")
    return text


def _uuid(value: str | None) -> str | None:
    return None if value is None else normalize_uuid(value)


@attrs.frozen(kw_only=True)
class BleMatcher:
    local_name_prefix: str | None = None
    local_name: str | None = None  # exact name
    service_uuid: str | None = attrs.field(default=None, converter=_uuid)
    manufacturer_id: int | None = None
    manufacturer_data_prefix: bytes | None = None  # start of that manufacturer's payload
    oui: str | None = attrs.field(default=None, converter=_oui)  # first three address bytes

    def __attrs_post_init__(self) -> None:
        if all(getattr(self, f.name) is None for f in attrs.fields(BleMatcher)):
            raise ValueError("a BLE matcher needs at least one field")
        if self.manufacturer_data_prefix is not None and self.manufacturer_id is None:
            raise ValueError("manufacturer_data_prefix needs manufacturer_id")

    def matches(self, adv: Advertisement) -> bool:
        name = adv.local_name or ""
        if self.local_name_prefix is not None and not name.startswith(self.local_name_prefix):
            return False
        if self.local_name is not None and name != self.local_name:
            return False
        if self.service_uuid is not None and self.service_uuid not in _advertised_uuids(adv):
            return False
        if self.manufacturer_id is not None:
            data = adv.manufacturer_data.get(self.manufacturer_id)
            if data is None:
                return False
            if self.manufacturer_data_prefix is not None and not bytes(data).startswith(
                self.manufacturer_data_prefix
            ):
                return False
        return self.oui is None or adv.address.upper().startswith(self.oui)


def _advertised_uuids(adv: Advertisement) -> set[str]:
    out = set()
    for uuid in adv.service_uuids:
        try:
            out.add(normalize_uuid(uuid))
        except ValueError:
            continue  # a malformed advertisement claims nothing, it does not break the scan
    return out


def to_matchers(items: Iterable[BleMatcher | Mapping[str, Any]]) -> tuple[BleMatcher, ...]:
    """Accept matchers or dicts with the same keys; ``ValueError`` for a bad declaration."""
    out: list[BleMatcher] = []
    for item in items:
        if isinstance(item, BleMatcher):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(BleMatcher(**dict(item)))
            except TypeError as exc:
                raise ValueError(f"bad BLE matcher {dict(item)!r}: {exc}") from None
        else:
            raise ValueError(f"bad BLE matcher {item!r}")
    return tuple(out)
