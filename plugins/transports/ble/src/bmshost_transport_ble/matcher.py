"""Declarative advertisement matchers: which driver claims a device seen in a BLE scan.

Drivers declare matchers as data (a ``BleMatcher`` or a plain dict with the same keys, so a BMS
plugin need not depend on this distribution). Every field given must match; a driver claims a
device when any one of its matchers does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from bmshost_transport_ble.uuids import normalize_uuid


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
    if len(parts) != 3 or not all(len(p) == 2 for p in parts):
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

    def matches(self, adv: Advertisement) -> bool:
        name = adv.local_name or ""
        if self.local_name_prefix is not None and not name.startswith(self.local_name_prefix):
            return False
        if self.local_name is not None and name != self.local_name:
            return False
        if self.service_uuid is not None and self.service_uuid not in {
            normalize_uuid(u) for u in adv.service_uuids
        }:
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


@attrs.frozen
class Claim:
    driver: str
    variant: str
    matchers: tuple[BleMatcher, ...]

    def claims(self, adv: Advertisement) -> bool:
        return any(m.matches(adv) for m in self.matchers)
