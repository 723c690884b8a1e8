"""One python-can bus per (interface, channel), shared by every battery on it.

Several batteries often share one CAN interface (a bank of packs, an inverter link). Opening the
interface once and fanning frames out to each link's own filters is both correct (a second
SocketCAN socket would work, but most other interfaces allow only one handle) and cheaper.

Receiving costs a BMS's frames, not a poll's, so the path is kept short:

* A bus with a file descriptor (SocketCAN) is watched by the event loop itself
  (``loop.add_reader``); each wake-up drains every frame that is waiting (``recv(0)``) instead of
  taking one per loop iteration. No thread.
* Other interfaces (and python-can's ``virtual`` bus used in tests) are read by one reader thread
  that only receives and hands the messages over in bursts: one loop wake-up per burst.
* In the loop, each burst is turned into frames once: a frame whose data repeats the last one
  with its id is the same ``CanFrame`` object (a BMS repeats most of its frames unchanged), the
  subscribers that accept an id are looked up once per id, and each subscriber gets its part of
  the burst as one list.

A read error (interface gone, bus-off) ends reading on that bus and is reported to every link on
it (``SharedBus.failed``), so a poll fails with the reason and the host reopens the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from bmshost.errors import LinkError
from bmshost.link import CanFrame
from bmshost_transport_can.params import CanFilter

log = logging.getLogger("bmshost.can")

BusFactory = Callable[[str, str, int | None], Any]  # (interface, channel, bitrate) -> can.BusABC
# Receives the frames of one burst that pass the subscriber's filters, oldest first; an empty
# list means "look at SharedBus.failed" (reading stopped).
Subscriber = Callable[[list[CanFrame]], None]

MAX_BURST = 256  # frames taken per loop wake-up at most (a flooded bus must not starve the loop)
MAX_IDS = 4096  # per-id memos are dropped beyond this many ids (a bus of random ids)
_EXTENDED = 1 << 29  # id | this: the memo key of a 29-bit id (11- and 29-bit ids differ)
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError,)


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


def _file_descriptor(bus: Any) -> int:
    try:
        return int(bus.fileno())
    except (NotImplementedError, AttributeError, OSError, ValueError, TypeError):
        return -1


class _Listener:
    """One link on the bus: its callback, its filters, and its share of the current burst."""

    __slots__ = ("callback", "filters", "inbox")

    def __init__(self, callback: Subscriber, filters: tuple[CanFilter, ...]) -> None:
        self.callback = callback
        self.filters = filters
        self.inbox: list[CanFrame] = []

    def accepts(self, arb_id: int, extended: bool) -> bool:
        return not self.filters or any(f.accepts(arb_id, extended) for f in self.filters)


class SharedBus:
    """A bus, its receive path and the links listening to it."""

    def __init__(
        self, key: tuple[str, str], bus: Any, bitrate: int | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        import can

        self.key = key
        self.bus = bus
        self.bitrate = bitrate
        self.error_frames = 0
        self.failed: str | None = None  # why reading stopped, once it has
        self.subscribers: dict[int, _Listener] = {}
        self._loop = loop
        self._read_errors: tuple[type[BaseException], ...] = (*_READ_ERRORS, can.CanError)
        self._frames: dict[int, CanFrame] = {}  # memo key -> newest frame object
        self._routes: dict[int, tuple[_Listener, ...]] = {}  # memo key -> accepting listeners
        self._batch: deque[Any] = deque()
        self._drain_scheduled = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd = _file_descriptor(bus)
        if self._fd >= 0:  # SocketCAN: the loop watches the socket itself
            try:
                loop.add_reader(self._fd, self._readable)
            except (NotImplementedError, ValueError, OSError):  # a loop that cannot watch it
                self._fd = -1
        if self._fd < 0:  # a reader thread hands messages over in bursts
            self._thread = threading.Thread(
                target=self._read_thread, name=f"CAN reader {key[0]}:{key[1]}", daemon=True
            )
            self._thread.start()

    # -- receiving -----------------------------------------------------------------------------

    def _readable(self) -> None:
        """The socket has frames: take all of them (up to MAX_BURST) in this wake-up."""
        recv = self.bus.recv
        batch: list[Any] = []
        try:
            for _ in range(MAX_BURST):
                msg = recv(0)
                if msg is None:
                    break
                batch.append(msg)
        except self._read_errors as exc:
            self._fail(exc)
        if batch:
            self._dispatch(batch)

    def _read_thread(self) -> None:
        recv = self.bus.recv
        batch = self._batch
        while not self._stopping.is_set():
            try:
                msg = recv(0.1)
            except Exception as exc:  # any interface's error: report it in the loop and stop
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    self._loop.call_soon_threadsafe(self._fail, exc)
                return
            if msg is None:
                continue
            batch.append(msg)
            if not self._drain_scheduled:
                self._drain_scheduled = True
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False  # first: a message appended from now on schedules again
        batch = self._batch
        msgs = [batch.popleft() for _ in range(len(batch))]
        if msgs:
            self._dispatch(msgs)

    def _dispatch(self, msgs: list[Any]) -> None:
        """python-can messages -> frames -> each accepting listener's inbox -> one call each."""
        frames = self._frames
        routes = self._routes
        for msg in msgs:
            if msg.is_error_frame:
                self.error_frames += 1
                continue
            if msg.is_remote_frame:
                continue
            arb_id = msg.arbitration_id
            extended = bool(msg.is_extended_id)
            key = arb_id | _EXTENDED if extended else arb_id
            data = bytes(msg.data)
            frame = frames.get(key)
            if frame is None or frame.data != data:
                if frame is None and len(frames) >= MAX_IDS:
                    frames.clear()
                frame = frames[key] = CanFrame(arb_id, data, extended)
            listeners = routes.get(key)
            if listeners is None:
                if len(routes) >= MAX_IDS:
                    routes.clear()
                listeners = routes[key] = tuple(
                    s for s in self.subscribers.values() if s.accepts(arb_id, extended)
                )
            for listener in listeners:
                listener.inbox.append(frame)
        for listener in tuple(self.subscribers.values()):  # a callback may detach a link
            if listener.inbox:
                burst, listener.inbox = listener.inbox, []
                listener.callback(burst)

    def _fail(self, exc: BaseException) -> None:
        if self.failed is not None:
            return
        self.failed = f"CAN {self.key[1]}: receive failed ({exc or type(exc).__name__})"
        log.error("%s; the link will be reopened", self.failed)
        self._stop_reading()
        for listener in list(self.subscribers.values()):
            listener.callback([])

    def _stop_reading(self) -> None:
        self._stopping.set()
        if self._fd >= 0:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._loop.remove_reader(self._fd)

    # -- listeners -----------------------------------------------------------------------------

    def subscribe(self, token: int, callback: Subscriber, filters: tuple[CanFilter, ...]) -> None:
        self.subscribers[token] = _Listener(callback, filters)
        self._routes.clear()
        self.update_hardware_filters()

    def unsubscribe(self, token: int) -> None:
        self.subscribers.pop(token, None)
        self._routes.clear()
        if self.subscribers:
            self.update_hardware_filters()

    def update_hardware_filters(self) -> None:
        """Let the interface drop what no listener wants (only when every listener filters)."""
        wanted = [f for s in self.subscribers.values() for f in s.filters]
        everything = any(not s.filters for s in self.subscribers.values())
        with contextlib.suppress(Exception):  # filters are an optimisation; software still filters
            self.bus.set_filters(
                None if everything or not wanted else [f.as_python_can() for f in wanted]
            )

    # -- sending / closing ---------------------------------------------------------------------

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
        self._stop_reading()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # The reader wakes from its 0.1 s receive; join it off the loop.
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 1.0)
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
            if shared is not None and shared.failed is not None and not shared.subscribers:
                del self._buses[key]  # a failed bus nobody uses any more: open it afresh
                await shared.shutdown()
                shared = None
            if shared is None:
                bus = self.factory(key[0], key[1], bitrate)
                shared = SharedBus(key, bus, bitrate, asyncio.get_running_loop())
                self._buses[key] = shared
            elif bitrate is not None and shared.bitrate not in (None, bitrate):
                raise LinkError(
                    f"CAN {key[1]}: already open at {shared.bitrate} bit/s, "
                    f"cannot also use {bitrate}"
                )
            shared.subscribe(token, callback, filters)
            return shared

    async def detach(self, key: tuple[str, str], token: int) -> None:
        async with self._lock:
            shared = self._buses.get(key)
            if shared is None:
                return
            shared.unsubscribe(token)
            if shared.subscribers:
                return
            del self._buses[key]
        await shared.shutdown()


DEFAULT_HUB = BusHub()
