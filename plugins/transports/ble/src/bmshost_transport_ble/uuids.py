"""GATT UUIDs as users and drivers write them (``ff01``, ``0000ff01-...``), normalised."""

from __future__ import annotations

from bmshost.advertising import BLUETOOTH_BASE_SUFFIX as BASE_SUFFIX
from bmshost.advertising import normalize_uuid

__all__ = ["BASE_SUFFIX", "normalize_uuid", "uuid_alternatives"]


def uuid_alternatives(value: object) -> tuple[str, ...]:
    """A UUID, or several comma-separated alternatives (first one the device has wins)."""
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = [part for part in str(value).split(",") if part.strip()]
    return tuple(normalize_uuid(item) for item in items)
