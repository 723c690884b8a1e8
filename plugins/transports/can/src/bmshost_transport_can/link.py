"""``can://`` links on python-can: per-link filters, a frame cache, periodic requests, bitrate
probing.

Each link is one battery's view of a (possibly shared) bus: it sees only the frames its filters
accept, in arrival order (``recv``, or ``drain`` for everything queued at once without a
coroutine per frame), and keeps the newest frame per id (``cache``) for drivers of broadcast
protocols. ``start_periodic`` sends a request frame on a fixed period (keep-alives, polled
protocols) until the link closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bmshost.errors import LinkError
from bmshost.link import CanFrame, CanLink
from bmshost.url import LinkUrl
from bmshost.wake import Waker
from bmshost_transport_can.cache import FrameCache
from bmshost_transport_can.hub import DEFAULT_HUB, BusHub, SharedBus
from bmshost_transport_can.params import AUTO_BITRATES, CanParams, parse_params
from bmshost_transport_can.socketcan import ensure_bitrate

log = logging.getLogger("bmshost.can")

_tokens = itertools.count(1)
MAX_QUEUE = 1024  # frames kept for recv(); a battery that stops reading must not grow memory


class PythonCanLink(CanLink):
    def __init__(
        self,
        url: LinkUrl,
        params: CanParams,
        hub: BusHub,
        clock: Callable[[], float] = time.monotonic,
        set_socketcan_bitrate: Callable[[str, int], Awaitable[None]] = ensure_bitrate,
    ) -> None:
        super().__init__(url)
        self.params = params
        self.hub = hub
        self.cache = FrameCache(clock=clock)
        self._clock = clock
        self._set_socketcan_bitrate = set_socketcan_bitrate
        self._token = next(_tokens)
        self._shared: SharedBus | None = None
        self._queue: deque[CanFrame] = deque(maxlen=MAX_QUEUE)
        self._waker = Waker()  # a reader in recv, woken by a delivery or its deadline
        self._periodic: list[asyncio.Task[None]] = []
        self.bitrate: int | None = params.bitrate
        self.frames_received = 0
        self.frames_sent = 0

    @property
    def description(self) -> str:
        return f"CAN {self.params.channel}"

    @property
    def is_open(self) -> bool:
        return self._shared is not None

    @property
    def health(self) -> dict[str, Any]:
        age = self.cache.last_frame_age
        return {
            "transport": "can",
            "interface": self.params.interface,
            "channel": self.params.channel,
            "bitrate": self.bitrate,
            "frames_received": self.frames_received,
            "frames_sent": self.frames_sent,
            "error_frames": self._shared.error_frames if self._shared else 0,
            "ids_seen": len(self.cache.snapshot()),
            "last_frame_age": None if age is None else round(age, 3),
        }

    # -- open / close --------------------------------------------------------------------------

    async def open(self) -> None:
        if self._shared is not None:
            return
        existing = self.hub.get(self.params.bus_key)
        if self.params.auto_bitrate and existing is None:
            self.bitrate = await self._probe_bitrate()
        elif self.params.auto_bitrate and existing is not None:
            self.bitrate = existing.bitrate  # someone already found it
        elif self.bitrate is not None and self.params.interface == "socketcan":
            await self._set_socketcan_bitrate(self.params.channel, self.bitrate)
        self._shared = await self.hub.attach(
            self.params.bus_key, self.bitrate, self._token, self._received, self.params.filters
        )

    async def _probe_bitrate(self) -> int:
        """Listen at each candidate bitrate; the first one carrying a valid frame wins."""
        tried: list[str] = []
        for bitrate in AUTO_BITRATES:
            if self.params.interface == "socketcan":
                await self._set_socketcan_bitrate(self.params.channel, bitrate)
            token = next(_tokens)
            seen = asyncio.Event()
            shared = await self.hub.attach(
                self.params.bus_key,
                bitrate,
                token,
                _setter(seen),
                self.params.filters,
            )
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(seen.wait(), self.params.probe_window)
                errors = shared.error_frames
            finally:
                await self.hub.detach(self.params.bus_key, token)
            if seen.is_set():
                log.info("%s: bitrate %d detected", self.description, bitrate)
                return bitrate
            tried.append(
                f"{bitrate // 1000} kbit/s" + (f" ({errors} error frames)" if errors else "")
            )
        raise LinkError(f"{self.description}: no BMS frames heard at {', '.join(tried)}")

    async def close(self) -> None:
        for task in self._periodic:
            task.cancel()
        for task in self._periodic:
            with contextlib.suppress(BaseException):
                await task
        self._periodic.clear()
        if self._shared is not None:
            self._shared = None
            with contextlib.suppress(Exception):
                await self.hub.detach(self.params.bus_key, self._token)
        self._queue.clear()
        self._waker.close()  # a reader fails now ("not open") instead of at its timeout

    # -- frames --------------------------------------------------------------------------------

    def _received(self, frames: list[CanFrame]) -> None:
        """The hub's delivery: this link's frames of one burst (empty: the bus failed)."""
        if frames:
            self.frames_received += len(frames)
            self.cache.put_many(frames)
            self._queue.extend(frames)
        self._waker.wake()

    def _require(self) -> SharedBus:
        shared = self._shared
        if shared is None:
            raise LinkError(f"{self.description}: not open")
        if shared.failed is not None:
            raise LinkError(shared.failed)
        return shared

    async def send(self, frame: CanFrame) -> None:
        shared = self._require()
        shared.send(frame)
        self.frames_sent += 1
        self._capture(frame, [])

    async def recv(self, timeout: float) -> CanFrame | None:
        queue = self._queue
        if not queue:
            self._require()
            if timeout <= 0:
                return None
            await self._waker.wait(timeout)  # cheaper than asyncio.wait_for (bmshost.wake)
            if not queue:
                self._require()  # woken because the bus failed: say so
                return None
        frame = queue.popleft()
        if self.recorder is not None:
            self._capture(None, [frame])
        return frame

    def drain(self) -> list[CanFrame]:
        """Every frame queued now, oldest first, without waiting (``[]`` when none): what a
        broadcast driver takes once per poll instead of one ``recv`` coroutine per frame."""
        queue = self._queue
        if not queue:
            self._require()
            return []
        frames = list(queue)
        queue.clear()
        if self.recorder is not None:
            self._capture(None, frames)
        return frames

    def discard_input(self) -> None:
        """Drop queued frames (the cache keeps the newest per id)."""
        self._queue.clear()

    def start_periodic(self, frame: CanFrame, period: float) -> asyncio.Task[None]:
        """Send ``frame`` every ``period`` seconds until the link closes (or the task is
        cancelled). Send errors are logged and retried on the next period."""
        if period <= 0:
            raise ValueError("period must be positive")

        async def repeat() -> None:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                try:
                    await self.send(frame)
                except LinkError as exc:
                    log.debug("%s: periodic send failed: %s", self.description, exc)
                next_at += period
                await asyncio.sleep(max(0.0, next_at - loop.time()))

        task = asyncio.ensure_future(repeat())
        self._periodic.append(task)
        return task


def _setter(event: asyncio.Event) -> Callable[[list[CanFrame]], None]:
    def heard(frames: list[CanFrame]) -> None:
        if frames:
            event.set()

    return heard


def open_can_link(
    url: LinkUrl,
    params: Mapping[str, Any] | None = None,
    *,
    hub: BusHub | None = None,
    set_socketcan_bitrate: Callable[[str, int], Awaitable[None]] = ensure_bitrate,
) -> PythonCanLink:
    """Transport factory for ``can://`` URLs (``params``: the variant's link defaults)."""
    return PythonCanLink(
        url,
        parse_params(url, params),
        hub or DEFAULT_HUB,
        set_socketcan_bitrate=set_socketcan_bitrate,
    )
