"""Turn what bleak and D-Bus raise into one sentence a user can act on."""

from __future__ import annotations

import asyncio


def explain(exc: BaseException, what: str) -> str:
    """A one-line reason for ``exc`` (no traceback), prefixed with ``what`` (the device)."""
    name = type(exc).__name__
    text = str(exc).strip()
    if isinstance(exc, FileNotFoundError) or "system_bus_socket" in text:
        return f"{what}: no D-Bus system bus (BlueZ needs one; is dbus/bluetoothd running?)"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"{what}: no answer in time (out of range, or connected to another host?)"
    if "ServiceUnknown" in text or ("org.bluez" in text and "not" in text.lower()):
        return f"{what}: BlueZ (bluetoothd) is not running"
    if name == "BleakBluetoothNotAvailableError" or "No Bluetooth adapters" in text:
        return f"{what}: no Bluetooth adapter found"
    if name == "BleakDeviceNotFoundError":
        return f"{what}: device not found (out of range, switched off, or wrong address)"
    if name == "BleakCharacteristicNotFoundError":
        return f"{what}: the device lacks a GATT characteristic the driver needs ({text})"
    if isinstance(exc, PermissionError):
        return f"{what}: permission denied talking to BlueZ (run as root or join group bluetooth)"
    return f"{what}: {name}: {text}" if text else f"{what}: {name}"
