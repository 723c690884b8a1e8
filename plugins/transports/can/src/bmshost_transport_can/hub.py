"""One python-can bus per (interface, channel), shared by every battery on it.

Several batteries often share one CAN interface (a bank of packs, an inverter link). Opening the
interface once and fanning frames out to each link's own filters is both correct (a second
SocketCAN socket would work, but most other interfaces allow only one handle) and cheaper.

Frames are delivered by a ``can.Notifier`` bound to the running asyncio loop, so listeners run in
the loop thread and never block it (file-descriptor reader for SocketCAN, a reader thread that
hands over with ``call_soon_threadsafe`` for the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from bmshost.errors import LinkError
from bmshost.link import CanFrame
from bmshost_transport_can.params import CanFilter

log = logging.getLogger("bmshost.can")

BusFactory = Callable[[str, str, int | None], Any]  # (interface, channel, bitrate) -> can.BusABC
Subscriber = Callable[[CanFrame], None]


def python_can_bus(interface: str, channel: str, bitrate: int | None) -> Any:
    """Open a python-can bus; LinkError with the reason when the interface is missing."""
    import can

    kwargs: dict[str, Any] = {"interface": interface, "channel": channel}
    if bitrate is not None and interface != "socketcan":  # SocketCAN's rate is set with `ip`
        kwargs["bitrate"] = bitrate
    try:
        return can.Bus(**kwargs)
    except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as exc:
        raise LinkError(f"CAN {interface}:{channel}: cannot open ({exc})") from None


class SharedBus:
    """A bus, its notifier and the links listening to it."""

    def __init__(
        self, key: tuple[str, str], bus: Any, bitrate: int | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        import can

        self.key = key
        self.bus = bus
        self.bitrate = bitrate
        self.error_frames = 0
        self.subscribers: dict[int, tuple[Subscriber, tuple[CanFilter, ...]]] = {}
        self._loop = loop
        self._batch: deque[Any] = deque()
        self._drain_scheduled = False
        try:
            bus.fileno()
            has_fd = True
        except (NotImplementedError, AttributeError):
            has_fd = False
        if has_fd:  # SocketCAN: the loop watches the socket itself, no thread
            self.notifier = can.Notifier(bus, [self._on_message], timeout=0.1, loop=loop)
        else:  # a reader thread hands frames over in batches: one loop wake-up per burst
            self.notifier = can.Notifier(bus, [self._from_thread], timeout=0.1)

    def _from_thread(self, msg: Any) -> None:
        self._batch.append(msg)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._batch:
            self._on_message(self._batch.popleft())

    def _on_message(self, msg: Any) -> None:
        if msg.is_error_frame:
            self.error_frames += 1
            return
        if msg.is_remote_frame:
            return
        frame = CanFrame(msg.arbitration_id, bytes(msg.data), bool(msg.is_extended_id))
        for callback, filters in list(self.subscribers.values()):
            if not filters or any(
                f.accepts(frame.arbitration_id, frame.is_extended_id) for f in filters
            ):
                callback(frame)

    def update_hardware_filters(self) -> None:
        """Let the interface drop what no listener wants (only when every listener filters)."""
        wanted = [f for _, fs in self.subscribers.values() for f in fs]
        everything = any(not fs for _, fs in self.subscribers.values())
        with contextlib.suppress(Exception):  # filters are an optimisation; software still filters
            self.bus.set_filters(
                None if everything or not wanted else [f.as_python_can() for f in wanted]
            )

    def send(self, frame: CanFrame) -> None:
        import can

        msg = can.Message(
            arbitration_id=frame.arbitration_id,
            data=frame.data,
            is_extended_id=frame.is_extended_id,
        )
        try:
            # A short timeout: a full transmit queue is reported, not waited out on the loop.
            self.bus.send(msg, timeout=0.05)
        except (can.CanError, OSError) as exc:
            raise LinkError(f"CAN {self.key[1]}: send failed ({exc})") from None

    async def shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        # Notifier.stop joins its reader thread: do it off the loop.
        await loop.run_in_executor(None, self.notifier.stop, 1.0)
        with contextlib.suppress(Exception):
            self.bus.shutdown()


class BusHub:
    """The shared buses of one process."""

    def __init__(self, factory: BusFactory = python_can_bus) -> None:
        self.factory = factory
        self._buses: dict[tuple[str, str], SharedBus] = {}
        self._lock = asyncio.Lock()

    def get(self, key: tuple[str, str]) -> SharedBus | None:
        return self._buses.get(key)

    async def attach(
        self,
        key: tuple[str, str],
        bitrate: int | None,
        token: int,
        callback: Subscriber,
        filters: tuple[CanFilter, ...],
    ) -> SharedBus:
        async with self._lock:
            shared = self._buses.get(key)
            if shared is None:
                bus = self.factory(key[0], key[1], bitrate)
                shared = SharedBus(key, bus, bitrate, asyncio.get_running_loop())
                self._buses[key] = shared
            elif bitrate is not None and shared.bitrate not in (None, bitrate):
                raise LinkError(
                    f"CAN {key[1]}: already open at {shared.bitrate} bit/s, "
                    f"cannot also use {bitrate}"
                )
            shared.subscribers[token] = (callback, filters)
            shared.update_hardware_filters()
            return shared

    async def detach(self, key: tuple[str, str], token: int) -> None:
        async with self._lock:
            shared = self._buses.get(key)
            if shared is None:
                return
            shared.subscribers.pop(token, None)
            if shared.subscribers:
                shared.update_hardware_filters()
                return
            del self._buses[key]
        await shared.shutdown()


DEFAULT_HUB = BusHub()
