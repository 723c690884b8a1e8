"""The slice of bleak the link uses, as protocols, and the real implementation.

Tests and benchmarks pass another ``BleBackend`` (see ``standin.py``) that drives the same calls
against a protocol simulator, because no BlueZ runs here. bleak is imported only when the real
backend is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

NotifyCallback = Callable[[Any, bytearray], None]


class GattCharacteristic(Protocol):
    uuid: str
    properties: list[str]


class GattService(Protocol):
    uuid: str
    characteristics: list[Any]


class BleClient(Protocol):
    """What ``bleak.BleakClient`` offers and the link needs."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def mtu_size(self) -> int: ...

    @property
    def services(self) -> Iterable[Any]: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def pair(self) -> None: ...

    async def start_notify(self, char: str, callback: NotifyCallback) -> None: ...

    async def write_gatt_char(self, char: str, data: bytes, response: bool) -> None: ...


class BleBackend(Protocol):
    """Finds a device (with its RSSI) and makes a client for it."""

    async def find(self, address: str, adapter: str, timeout: float) -> tuple[Any, int | None]:
        """Return (device handle, RSSI or None); raise when the device is not advertising."""
        ...

    def client(
        self, device: Any, adapter: str, timeout: float, on_disconnect: Callable[[], None]
    ) -> BleClient: ...

    async def reset_adapter(self, adapter: str) -> None:
        """Power-cycle the adapter (the last resort after many failed connects)."""
        ...


class BleakBackend:
    """The real thing: bleak on BlueZ."""

    async def find(self, address: str, adapter: str, timeout: float) -> tuple[Any, int | None]:
        from bleak import BleakScanner
        from bleak.exc import BleakDeviceNotFoundError

        found: dict[str, int] = {}

        def wanted(device: Any, adv: Any) -> bool:
            if str(device.address).upper() == address:
                found["rssi"] = int(adv.rssi)
                return True
            return False

        device = await BleakScanner.find_device_by_filter(wanted, timeout=timeout, adapter=adapter)
        if device is None:
            raise BleakDeviceNotFoundError(address, f"{address} is not advertising")
        return device, found.get("rssi")

    def client(
        self, device: Any, adapter: str, timeout: float, on_disconnect: Callable[[], None]
    ) -> BleClient:
        from bleak import BleakClient

        client = BleakClient(
            device,
            disconnected_callback=lambda _c: on_disconnect(),
            timeout=timeout,
            adapter=adapter,
        )
        return cast(BleClient, client)  # bleak's wider signatures satisfy the protocol's calls

    async def reset_adapter(self, adapter: str) -> None:
        """Power the adapter off and on through BlueZ's D-Bus API (dbus-fast comes with bleak)."""
        from dbus_fast import BusType, Variant
        from dbus_fast.aio import MessageBus

        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            introspection = await bus.introspect("org.bluez", f"/org/bluez/{adapter}")
            proxy = bus.get_proxy_object("org.bluez", f"/org/bluez/{adapter}", introspection)
            props = proxy.get_interface("org.freedesktop.DBus.Properties")
            for powered in (False, True):
                await props.call_set("org.bluez.Adapter1", "Powered", Variant("b", powered))  # type: ignore[attr-defined]
        finally:
            bus.disconnect()
