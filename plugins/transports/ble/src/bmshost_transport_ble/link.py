"""``ble://AA:BB:CC:DD:EE:FF`` links: a GATT notify/write pair seen as a byte stream.

Writes go to the write characteristic (split to the MTU), notifications arrive as read bytes and
the driver's framer reassembles them, exactly as on a serial line. Notifications are appended to
one receive buffer in bleak's callback, which also runs the waiting reader's framer: the reader is
woken once per complete frame (or a lost connection), not once per 20-byte notification. Two
connection modes:

* ``keep`` (default): connect on ``open`` and stay connected; a lost connection is re-made on
  the next write (spaced by the adapter's back-off).
* ``rotate``: connect for a poll cycle, disconnect when the link has been idle for
  ``idle_disconnect`` seconds, so more batteries than the adapter's slots can be served.

Drivers that need a handshake after every (re)connection (a password) add an ``on_connect``
hook. ``health`` reports RSSI, time since the last frame and the reconnect count; the host puts it
into the battery's published state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from bmshost.errors import BmshostError, LinkError, LinkTimeout
from bmshost.link import Framer, StreamLink
from bmshost.url import LinkUrl
from bmshost.wake import Waker
from bmshost_transport_ble.backend import BleakBackend, BleBackend, BleClient
from bmshost_transport_ble.errors import explain
from bmshost_transport_ble.manager import DEFAULT_POOL, ConnectionManager
from bmshost_transport_ble.options import BleTransportOptions
from bmshost_transport_ble.params import BleParams, parse_params

log = logging.getLogger("bmshost.ble")

ConnectHook = Callable[["BleStreamLink"], Awaitable[None]]


class BleStreamLink(StreamLink):
    def __init__(
        self,
        url: LinkUrl,
        params: BleParams,
        backend: BleBackend,
        manager: ConnectionManager,
    ) -> None:
        super().__init__(url)
        self.params = params
        self.backend = backend
        self.manager = manager
        self.on_connect: list[ConnectHook] = []
        self._client: BleClient | None = None
        self._connected = False
        self._open = False
        # A reader waiting in read_frame (woken by the notification callback or its deadline),
        # its framer, and the frame the callback found for it (or the framer's exception there).
        self._waker = Waker()
        self._framer: Framer | None = None
        self._found: bytes | None = None
        self._framer_error: Exception | None = None
        self._notify_uuid = params.notify_uuids[0]
        self._write_uuid = params.write_uuids[0]
        self._chunk = max(20, params.mtu - 3)
        self._rssi: int | None = None
        self._last_frame: float | None = None
        self._connects = 0
        self._activity = 0  # bumps on every write; the idle release checks it did not move
        self._idle: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        return f"BLE {self.params.address}"

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def health(self) -> dict[str, Any]:
        """Link health for ``BatteryUpdate.link_health`` (JSON-friendly)."""
        age = (
            None if self._last_frame is None else round(self.manager.clock() - self._last_frame, 3)
        )
        return {
            "transport": "ble",
            "address": self.params.address,
            "connected": self._connected,
            "mode": self.params.mode,
            "rssi": self._rssi,
            "last_frame_age": age,
            "reconnects": max(0, self._connects - 1),
            "connect_failures": self.manager.failures(self.params.address),
            "retry_in": round(self.manager.retry_in(self.params.address), 3),
            "adapter": self.params.adapter,
            "slots_in_use": len(self.manager.in_use),
            "slots": self.manager.slots,
        }

    # -- connection ----------------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True
        try:
            await self._ensure_connected()
        except BaseException:
            self._open = False
            raise

    async def close(self) -> None:
        self._open = False
        self._cancel_idle()
        self._waker.close()
        await self._disconnect()

    async def _ensure_connected(self) -> None:
        if self._connected and self._client is not None:
            return
        address = self.params.address
        closing = self._idle_task
        if closing is not None and not closing.done():
            await asyncio.shield(closing)  # the idle disconnect gives the slot back first
        await self.manager.wait_turn(address)
        await self.manager.acquire(address, self.params.connect_timeout)
        client: BleClient | None = None
        try:
            device, rssi = await asyncio.wait_for(
                self.backend.find(address, self.params.adapter, self.params.connect_timeout),
                self.params.connect_timeout,
            )
            client = self.backend.client(
                device, self.params.adapter, self.params.connect_timeout, self._lost
            )
            await asyncio.wait_for(client.connect(), self.params.connect_timeout)
            if self.params.pair:
                await client.pair()
            self._pick_characteristics(client.services)
            self._chunk = max(20, min(self.params.mtu, int(client.mtu_size or 23)) - 3)
            await client.start_notify(self._notify_uuid, self._notified)
        except Exception as exc:  # bleak, D-Bus and OS errors of many types: one message
            await self._abandon(client)
            await self.manager.record_failure(address)
            if isinstance(exc, LinkError):
                raise
            raise LinkError(explain(exc, self.description)) from None
        self._client = client
        self._connected = True
        self._rssi = rssi
        self._connects += 1
        self._rx.clear()
        self.manager.record_success(address)
        for hook in self.on_connect:
            try:
                await hook(self)
            except BmshostError as exc:
                await self._disconnect()
                raise LinkError(f"{self.description}: handshake failed: {exc}") from None

    def _pick_characteristics(self, services: Iterable[Any]) -> None:
        """Choose the first notify/write pair the device has (e.g. ff01/ff02 or fff1/fff2)."""
        present: set[str] = set()
        for service in services:
            if self.params.service_uuid and str(service.uuid).lower() != self.params.service_uuid:
                continue
            present.update(str(c.uuid).lower() for c in service.characteristics)
        for notify, write in zip(self.params.notify_uuids, self.params.write_uuids, strict=True):
            if notify in present and write in present:
                self._notify_uuid, self._write_uuid = notify, write
                return
        wanted = ", ".join(
            f"{n}/{w}"
            for n, w in zip(self.params.notify_uuids, self.params.write_uuids, strict=True)
        )
        raise LinkError(
            f"{self.description}: no notify/write characteristic pair {wanted} on the device"
        )

    async def _abandon(self, client: BleClient | None) -> None:
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()
        self.manager.release(self.params.address)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        self._connected = False
        await self._abandon(client)

    def _lost(self) -> None:
        """bleak's disconnected callback: the device went away."""
        if self._connected:
            log.info("%s: connection lost", self.description)
        self._connected = False
        self._client = None
        self.manager.release(self.params.address)
        self._waker.wake()  # a reader fails now instead of at its timeout

    def _notified(self, _sender: Any, data: bytearray) -> None:
        """bleak's notification callback: buffer, and wake the reader only for a whole frame."""
        rx = self._rx
        rx += data
        waker = self._waker
        if not waker.waiting:
            return
        framer = self._framer
        if framer is None:  # a plain _read: any bytes will do
            waker.wake()
            return
        try:
            frame, used = framer(bytes(rx))
        except Exception as exc:  # a driver bug must reach the reader, not the loop's log
            self._framer_error = exc
            waker.wake()
            return
        if used:
            del rx[:used]
        if frame is not None:
            self._found = frame
            waker.wake()

    # -- rotate mode: give the slot back when idle ---------------------------------------------

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _schedule_idle(self) -> None:
        if self.params.mode != "rotate":
            return
        self._cancel_idle()
        mark = self._activity
        self._idle = asyncio.get_running_loop().call_later(
            self.params.idle_disconnect, self._idle_fire, mark
        )

    def _idle_fire(self, mark: int) -> None:
        self._idle = None
        if mark == self._activity and not self._lock.locked() and self._connected:
            # Detach now (synchronously), so a request starting meanwhile reconnects instead of
            # writing to a connection that is about to close.
            client, self._client = self._client, None
            self._connected = False
            self._idle_task = asyncio.ensure_future(self._abandon(client))

    # -- StreamLink ----------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        self._activity += 1
        if self._idle is not None:
            self._cancel_idle()
        if not self._connected or self._client is None:
            await self._ensure_connected()
        client = self._client
        if client is None:
            raise LinkError(f"{self.description}: not connected")
        chunk = self._chunk
        try:
            if len(data) <= chunk:  # the usual request: one write, no slicing
                await client.write_gatt_char(self._write_uuid, data, self.params.write_response)
            else:
                for start in range(0, len(data), chunk):
                    await client.write_gatt_char(
                        self._write_uuid, data[start : start + chunk], self.params.write_response
                    )
        except Exception as exc:
            await self._disconnect()
            raise LinkError(explain(exc, f"{self.description}: write failed")) from None

    async def _read(self, timeout: float) -> bytes:
        """Whatever arrived, waiting up to ``timeout`` for a first notification (the framed
        path, ``read_frame``, does not come through here)."""
        if not self._rx:
            await self._wait(None, timeout)
            if not self._rx and not self._connected:
                raise LinkError(f"{self.description}: connection lost")
        data = bytes(self._rx)
        self._rx.clear()
        return data

    async def _wait(self, framer: Framer | None, timeout: float) -> None:
        """Sleep until the notification callback wakes us (a frame for ``framer``, any bytes
        without one), the connection is lost, or ``timeout`` passes (``bmshost.wake``: much
        cheaper than asyncio.wait_for)."""
        if not self._connected:
            raise LinkError(f"{self.description}: not connected")
        self._framer = framer
        try:
            await self._waker.wait(timeout)
        finally:
            self._framer = None

    async def read_frame(self, framer: Framer, timeout: float) -> bytes:
        try:
            rx = self._rx
            if rx:  # a frame may already be buffered (several arrived in one burst)
                frame, used = framer(bytes(rx))
                if used:
                    del rx[:used]
                if frame is not None:
                    self._last_frame = self.manager.clock()
                    return frame
            if timeout <= 0:
                raise LinkTimeout(f"{self.description}: no complete reply within {timeout:g} s")
            self._found = None
            self._framer_error = None
            try:
                await self._wait(framer, timeout)
                error, self._framer_error = self._framer_error, None
                if error is not None:
                    raise error
                frame, self._found = self._found, None
            finally:
                if self._found is not None:  # cancelled after the frame was found:
                    rx[:0] = self._found  # put it back for the next reader
                    self._found = None
            if frame is None:
                if not self._connected:
                    raise LinkError(f"{self.description}: connection lost")
                raise LinkTimeout(f"{self.description}: no complete reply within {timeout:g} s")
        finally:
            self._schedule_idle()
        self._last_frame = self.manager.clock()
        return frame


def open_ble_link(
    url: LinkUrl,
    params: Mapping[str, Any] | None = None,
    *,
    backend: BleBackend | None = None,
    manager: ConnectionManager | None = None,
    options: BleTransportOptions | None = None,
) -> BleStreamLink:
    """Transport factory for ``ble://`` URLs (``params``: the variant's link defaults;
    ``options``: the ``[transports.ble]`` table)."""
    parsed = parse_params(url, params)
    real = backend or BleakBackend()
    opts = options or BleTransportOptions()
    mgr = manager or DEFAULT_POOL.get(
        parsed.adapter, real.reset_adapter, slots=opts.slots, policy=opts.policy()
    )
    return BleStreamLink(url, parsed, real, mgr)
