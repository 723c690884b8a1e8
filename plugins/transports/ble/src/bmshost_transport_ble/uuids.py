"""GATT UUIDs as users and drivers write them (``ff01``, ``0000ff01-...``), normalised."""

from __future__ import annotations

BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"  # the Bluetooth base UUID


def normalize_uuid(text: str) -> str:
    """``ff01`` / ``0xFF01`` / ``0000ff01`` → the full lower-case 128-bit form.

    Raises ``ValueError`` for anything that is not 16-, 32- or 128-bit hex.
    """
    raw = text.strip().lower().removeprefix("0x")
    if len(raw) in (4, 8) and _is_hex(raw):
        return f"{int(raw, 16):08x}{BASE_SUFFIX}"
    plain = raw.replace("-", "")
    if len(plain) == 32 and _is_hex(plain):
        return f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}"
    raise ValueError(f"not a Bluetooth UUID: {text!r}")


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def uuid_alternatives(value: object) -> tuple[str, ...]:
    """A UUID, or several comma-separated alternatives (first one the device has wins)."""
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = [part for part in str(value).split(",") if part.strip()]
    return tuple(normalize_uuid(item) for item in items)
