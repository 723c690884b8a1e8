"""The link interface every transport implements, and the helpers that frame replies.

Two shapes of link exist. A ``StreamLink`` carries bytes (serial, TCP, BLE notifications); its
``request`` writes a frame and collects bytes until the driver's framer recognises one reply.
A ``CanLink`` carries CAN frames (id + up to 8 bytes). Both can record every exchange into a
capture (``bmshost --capture``) so a user's bug report becomes a regression test.

Links are shared between the batteries of one daisy chain: ``exclusive()`` serialises whole
transactions so replies are not stolen by a neighbour.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ClassVar

import attrs

from bmshost.errors import LinkError, LinkTimeout
from bmshost.url import LinkUrl

# A framer looks at the bytes received so far and returns (frame, consumed): the first complete
# frame (or None) and how many leading bytes are used up (the frame plus any junk before it).
Framer = Callable[[bytes], tuple[bytes | None, int]]


class CaptureRecorder:
    """Collects exchanges in the capture format (architecture brief §8)."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, object]] = []

    def record(self, tx: str | None, rx: list[str]) -> None:
        entry: dict[str, object] = {}
        if tx is not None:
            entry["tx"] = tx
        entry["rx"] = rx
        self.exchanges.append(entry)


class BaseLink(ABC):
    """What every link has: a URL, open/close, a transaction lock and an optional recorder."""

    kind: ClassVar[str] = "stream"

    def __init__(self, url: LinkUrl) -> None:
        self.url = url
        self.recorder: CaptureRecorder | None = None
        self._lock = asyncio.Lock()

    @property
    def description(self) -> str:
        """How the link appears in logs and on ``/Mgmt/Connection``."""
        return self.url.raw

    @abstractmethod
    async def open(self) -> None:
        """Open the link. Raises ``LinkError`` with a reason a user can act on."""

    @abstractmethod
    async def close(self) -> None:
        """Close the link; never raises."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the link for one transaction (several batteries may share it)."""
        async with self._lock:
            yield


class StreamLink(BaseLink):
    """A byte stream. Subclasses implement ``_write``, ``_read`` and ``discard_input``."""

    kind: ClassVar[str] = "stream"

    def __init__(self, url: LinkUrl) -> None:
        super().__init__(url)
        self._rx = bytearray()

    @abstractmethod
    async def _write(self, data: bytes) -> None: ...

    @abstractmethod
    async def _read(self, timeout: float) -> bytes:
        """Return the bytes that arrived within ``timeout`` seconds (possibly b''). May raise
        ``LinkTimeout`` early when it knows nothing can arrive (replay)."""

    def discard_input(self) -> None:
        """Drop bytes received but not consumed (stale replies from an earlier timeout)."""
        self._rx.clear()

    async def write(self, data: bytes) -> None:
        if not self.is_open:
            raise LinkError(f"{self.description}: not open")
        await self._write(data)

    async def read_some(self, timeout: float) -> bytes:
        """Whatever bytes are buffered or arrive within ``timeout`` s, unframed (b'' if none):
        for detection, where the reply's protocol is the open question."""
        if not self.is_open:
            raise LinkError(f"{self.description}: not open")
        if self._rx:
            data = bytes(self._rx)
            self._rx.clear()
            return data
        return await self._read(timeout)

    async def read_frame(self, framer: Framer, timeout: float) -> bytes:
        """Collect bytes until ``framer`` finds a frame; ``LinkTimeout`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self._rx:
                frame, used = framer(bytes(self._rx))
                if used:
                    del self._rx[:used]
                if frame is not None:
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout(f"{self.description}: no complete reply within {timeout:g} s")
            chunk = await self._read(remaining)
            if chunk:
                self._rx += chunk

    async def request(self, tx: bytes | None, framer: Framer, timeout: float) -> bytes:
        """Write ``tx`` (if any) and return the first reply frame; the exchange is captured."""
        if tx is not None:
            self.discard_input()
            await self.write(tx)
        try:
            frame = await self.read_frame(framer, timeout)
        except LinkTimeout:
            if self.recorder is not None and tx is not None:
                self.recorder.record(tx.hex(), [])
            raise
        if self.recorder is not None:
            self.recorder.record(tx.hex() if tx is not None else None, [frame.hex()])
        return frame

    async def request_many(
        self, tx: bytes, framer: Framer, count: int, timeout: float
    ) -> list[bytes]:
        """Write ``tx`` and collect ``count`` reply frames (multi-frame replies)."""
        self.discard_input()
        await self.write(tx)
        frames: list[bytes] = []
        try:
            for _ in range(count):
                frames.append(await self.read_frame(framer, timeout))
        finally:
            if self.recorder is not None:
                self.recorder.record(tx.hex(), [f.hex() for f in frames])
        return frames


@attrs.frozen(slots=True)
class CanFrame:
    arbitration_id: int
    data: bytes
    is_extended_id: bool = True

    def to_candump(self) -> str:
        width = 8 if self.is_extended_id else 3
        return f"{self.arbitration_id:0{width}X}#{self.data.hex().upper()}"

    @classmethod
    def from_candump(cls, text: str) -> CanFrame:
        """Parse ``ID#DATA`` (candump's compact form). Raises ``ValueError`` when malformed."""
        ident, sep, data = text.strip().partition("#")
        if not sep or not ident:
            raise ValueError(f"not a CAN frame (expected ID#DATA): {text!r}")
        try:
            arb = int(ident, 16)
            payload = bytes.fromhex(data)
        except ValueError:
            raise ValueError(f"not a CAN frame (bad hex): {text!r}") from None
        if len(payload) > 8:
            raise ValueError(f"CAN frame longer than 8 bytes: {text!r}")
        extended = len(ident) > 3 or arb > 0x7FF
        if arb > 0x1FFFFFFF:
            raise ValueError(f"CAN id out of range: {text!r}")
        return cls(arb, payload, extended)


class CanLink(BaseLink):
    """A CAN bus. ``recv`` returns frames in arrival order; drivers keep their own caches."""

    kind: ClassVar[str] = "can"

    @abstractmethod
    async def send(self, frame: CanFrame) -> None: ...

    @abstractmethod
    async def recv(self, timeout: float) -> CanFrame | None:
        """Next frame, or None when nothing arrived within ``timeout`` seconds."""

    def _capture(self, tx: CanFrame | None, rx: list[CanFrame]) -> None:
        if self.recorder is not None:
            self.recorder.record(
                tx.to_candump() if tx is not None else None, [f.to_candump() for f in rx]
            )
