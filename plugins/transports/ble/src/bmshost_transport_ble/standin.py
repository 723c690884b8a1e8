"""A stand-in for bleak built on a bmshost protocol simulator (no BlueZ needed).

``SimulatedBleBackend`` offers the calls ``BleStreamLink`` makes of bleak: find a device, connect,
list services, subscribe to notifications, write. Writes feed a ``bmshost.driver.Simulator``;
its replies come back as notifications of at most ``chunk`` bytes (20 by default, as over a
default-MTU link), one per event-loop iteration, as bleak delivers them on BlueZ (with
AcquireNotify each notification is one datagram on a socket the loop watches: one read, one
callback, per iteration). Connection failures, delays and link losses can be injected. Tests,
benchmarks and demos use it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import attrs
from bleak.exc import BleakDeviceNotFoundError, BleakError

from bmshost.driver import Simulator
from bmshost_transport_ble.backend import NotifyCallback
from bmshost_transport_ble.uuids import normalize_uuid


@attrs.define(eq=False)
class StandinCharacteristic:
    uuid: str
    properties: list[str]


@attrs.define(eq=False)
class StandinService:
    uuid: str
    characteristics: list[StandinCharacteristic]


def gatt(service: str, notify: str, write: str) -> list[StandinService]:
    """A service with one notify and one write characteristic."""
    return [
        StandinService(
            normalize_uuid(service),
            [
                StandinCharacteristic(normalize_uuid(notify), ["notify"]),
                StandinCharacteristic(normalize_uuid(write), ["write", "write-without-response"]),
            ],
        )
    ]


@attrs.define(eq=False, kw_only=True)
class StandinDevice:
    """One simulated peripheral."""

    address: str
    simulator: Simulator
    services: list[StandinService]
    name: str | None = None
    rssi: int = -60
    manufacturer_data: dict[int, bytes] = attrs.field(factory=dict)
    service_uuids: list[str] = attrs.field(factory=list)
    chunk: int = 20
    mtu: int = 23
    connect_delay: float = 0.0  # s of (real) event-loop time a connect takes
    fail_connects: int = 0  # the next N connects fail
    advertising: bool = True
    writes: list[bytes] = attrs.field(factory=list)  # every GATT write, for assertions
    clients: list[StandinClient] = attrs.field(factory=list)


class StandinClient:
    """The part of ``BleakClient`` the link uses."""

    def __init__(
        self, device: StandinDevice, backend: SimulatedBleBackend, on_disconnect: Callable[[], None]
    ) -> None:
        self.device = device
        self.backend = backend
        self._on_disconnect = on_disconnect
        self._connected = False
        self._callbacks: dict[str, NotifyCallback] = {}
        self.paired = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def mtu_size(self) -> int:
        return self.device.mtu

    @property
    def services(self) -> list[StandinService]:
        return self.device.services

    async def connect(self) -> None:
        if self.device.connect_delay:
            await asyncio.sleep(self.device.connect_delay)
        if self.device.fail_connects > 0:
            self.device.fail_connects -= 1
            raise BleakError(f"simulated connect failure to {self.device.address}")
        self._connected = True
        self.backend.connected += 1
        self.backend.peak = max(self.backend.peak, self.backend.connected)

    async def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self.backend.connected -= 1

    async def pair(self) -> None:
        self.paired = True

    async def start_notify(self, char: str, callback: NotifyCallback) -> None:
        if not self._connected:
            raise BleakError("not connected")
        self._callbacks[normalize_uuid(char)] = callback

    async def write_gatt_char(self, char: str, data: bytes, response: bool) -> None:
        if not self._connected:
            raise BleakError("not connected")
        if len(data) > self.device.mtu - 3:
            raise BleakError(f"write of {len(data)} bytes exceeds the MTU")
        self.device.writes.append(bytes(data))
        sim = self.device.simulator
        self.backend.advance(sim)
        reply = sim.feed(bytes(data))
        if not reply or sim.silent or not self._callbacks:
            return
        callback = next(iter(self._callbacks.values()))
        asyncio.get_running_loop().call_soon(self._deliver, callback, reply, 0, None)

    def push(self, data: bytes) -> asyncio.Future[None]:
        """The device sends ``data`` unasked (a BMS that streams records), in notifications
        like a reply; the future is done once the last one was delivered (or dropped)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._connected and self._callbacks and data and not self.device.simulator.silent:
            callback = next(iter(self._callbacks.values()))
            asyncio.get_running_loop().call_soon(self._deliver, callback, data, 0, done)
        else:
            done.set_result(None)
        return done

    def _deliver(
        self,
        callback: NotifyCallback,
        reply: bytes,
        start: int,
        done: asyncio.Future[None] | None,
    ) -> None:
        """One notification now, the next one in the next loop iteration."""
        end = start + self.device.chunk
        last = not self._connected or end >= len(reply)
        if not last:
            asyncio.get_running_loop().call_soon(self._deliver, callback, reply, end, done)
        if self._connected:
            callback(None, bytearray(reply[start:end]))
        if last and done is not None and not done.done():
            done.set_result(None)

    def drop(self) -> None:
        """Simulate the peripheral going away (bleak calls the disconnected callback)."""
        if self._connected:
            self._connected = False
            self.backend.connected -= 1
            self._on_disconnect()


class SimulatedBleBackend:
    """A ``BleBackend`` whose devices are simulators."""

    def __init__(
        self,
        devices: list[StandinDevice] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = {d.address.upper(): d for d in devices or []}
        self.clock = clock
        self.connected = 0
        self.peak = 0
        self.resets: list[str] = []
        self._last: dict[int, float] = {}

    def add(self, device: StandinDevice) -> StandinDevice:
        self.devices[device.address.upper()] = device
        return device

    def advance(self, sim: Simulator) -> None:
        now = self.clock()
        last = self._last.get(id(sim), now)
        if now > last:
            sim.tick(now - last)
        self._last[id(sim)] = now

    async def find(self, address: str, adapter: str, timeout: float) -> tuple[Any, int | None]:
        device = self.devices.get(address.upper())
        if device is None or not device.advertising:
            raise BleakDeviceNotFoundError(address, f"Device with address {address} was not found.")
        return device, device.rssi

    def client(
        self, device: Any, adapter: str, timeout: float, on_disconnect: Callable[[], None]
    ) -> StandinClient:
        client = StandinClient(device, self, on_disconnect)
        device.clients.append(client)
        return client

    async def reset_adapter(self, adapter: str) -> None:
        self.resets.append(adapter)

    def advertisements(self) -> list[tuple[str, dict[str, Any]]]:
        """What a scan would see: (address, advertisement fields) per advertising device."""
        return [
            (
                d.address,
                {
                    "local_name": d.name,
                    "rssi": d.rssi,
                    "service_uuids": list(d.service_uuids),
                    "manufacturer_data": dict(d.manufacturer_data),
                },
            )
            for d in self.devices.values()
            if d.advertising
        ]
