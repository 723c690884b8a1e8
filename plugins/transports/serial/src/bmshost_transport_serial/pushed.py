"""A ``StreamLink`` whose bytes are pushed to it by an event-loop callback, framed as they come.

The serial port's reader callback and the TCP gateway's protocol append what arrived to the
link's receive buffer (``_received``) and run the waiting reader's framer right there, so the
reader is woken once per complete frame (or once for a failure or its deadline), not once per
chunk, and no read goes through ``asyncio.wait_for`` (a task, a timer and their callbacks per
read). A reader waits on a bare future; one deadline timer per link follows the waiting reader's
deadline, re-armed only when it fires early, instead of a timer made and cancelled per request.

A failure of the receiving side (device unplugged, connection closed, port closed while a reply
is awaited) is kept until the next ``open`` and wakes a waiting reader at once: reads then raise
``LinkError`` with that reason instead of running into their timeout.
"""

from __future__ import annotations

from bmshost.errors import LinkError, LinkTimeout
from bmshost.link import Framer, StreamLink
from bmshost.url import LinkUrl
from bmshost.wake import Waker

# Bytes kept when nobody consumes them (a device that talks unasked between polls): the newest
# are kept, as a full kernel buffer would have dropped the rest. Far above any BMS frame.
MAX_UNREAD = 64 * 1024


class PushedStreamLink(StreamLink):
    """Subclasses feed ``_received`` / ``_receive_failed`` from their loop callback, call
    ``_start_receiving`` when they open and ``_stop_receiving`` when they close."""

    def __init__(self, url: LinkUrl) -> None:
        super().__init__(url)
        # The reader waiting in read_frame/_read (woken by the callback or its deadline), its
        # framer, and what the callback found for it (the frame, or the framer's exception).
        self._waker = Waker()
        self._framer: Framer | None = None
        self._found: bytes | None = None
        self._framer_error: Exception | None = None
        self._failure: str | None = None  # why nothing more can arrive (until the next open)

    # -- for subclasses ------------------------------------------------------------------------

    def _start_receiving(self) -> None:
        """A fresh connection: no stale bytes, no old failure."""
        self._rx.clear()
        self._failure = None

    def _stop_receiving(self, reason: str) -> None:
        """The link closes: a waiting reader fails with ``reason`` now."""
        self._receive_failed(reason)
        self._waker.close()

    def _received(self, data: bytes) -> None:
        """Bytes arrived: buffer them, and wake the reader only when its frame is complete."""
        rx = self._rx
        waker = self._waker
        framer = self._framer
        if framer is None or not waker.waiting:
            rx += data
            if waker.waiting:  # a plain _read: any bytes will do
                waker.wake()
            elif len(rx) > MAX_UNREAD:
                del rx[:-MAX_UNREAD]
            return
        if rx:  # the frame's start came earlier: frame the whole
            rx += data
            data = bytes(rx)
            rx.clear()
        # The usual case skips the buffer: a whole reply in one chunk goes straight to the
        # framer. From here until the end, every unconsumed byte is in ``data``, none in rx.
        try:
            frame, used = framer(data)
        except Exception as exc:  # a driver bug must reach the reader, not the loop's log
            rx += data
            self._framer_error = exc
            waker.wake()
            return
        if used < len(data):
            rx += data[used:] if used else data
            if frame is None and len(rx) > MAX_UNREAD:  # a framer that never finds a frame
                del rx[:-MAX_UNREAD]  # must not hoard memory
        if frame is not None:
            self._found = frame
            waker.wake()

    def _receive_failed(self, reason: str) -> None:
        """Nothing more can arrive: remember why (the first reason wins) and wake the reader."""
        if self._failure is None:
            self._failure = reason
        self._waker.wake()

    # -- StreamLink ----------------------------------------------------------------------------

    async def _read(self, timeout: float) -> bytes:
        """Whatever is buffered, else whatever arrives within ``timeout`` (b'' if nothing)."""
        rx = self._rx
        if not rx:
            self._check_can_receive()
            if timeout > 0:
                await self._wait(None, timeout)
            if not rx and self._failure is not None:
                raise LinkError(self._failure)
        data = bytes(rx)
        rx.clear()
        return data

    async def read_frame(self, framer: Framer, timeout: float) -> bytes:
        rx = self._rx
        if rx:  # a frame may be buffered already (several arrived in one chunk)
            frame, used = framer(bytes(rx))
            if used:
                del rx[:used]
            if frame is not None:
                return frame
        self._check_can_receive()
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
            if self._failure is not None:
                raise LinkError(self._failure)
            raise LinkTimeout(f"{self.description}: no complete reply within {timeout:g} s")
        return frame

    # -- waiting -------------------------------------------------------------------------------

    def _check_can_receive(self) -> None:
        if not self.is_open:
            raise LinkError(f"{self.description}: not open")
        if self._failure is not None:
            raise LinkError(self._failure)

    async def _wait(self, framer: Framer | None, timeout: float) -> None:
        """Sleep until the callback wakes us (a frame for ``framer``, any bytes without one),
        the receiving side fails, or ``timeout`` passes."""
        if self._waker.busy:
            # Transactions are serialised by exclusive(); two readers at once is a caller bug.
            raise LinkError(f"{self.description}: another read is already waiting")
        self._framer = framer
        try:
            await self._waker.wait(timeout)  # cheaper than asyncio.wait_for (bmshost.wake)
        finally:
            self._framer = None


__all__ = ["MAX_UNREAD", "PushedStreamLink"]
