"""One reader waiting for data that a callback delivers (a BLE notification, a CAN burst, bytes on
a serial fd), woken by that callback or by its deadline.

``asyncio.wait_for`` builds a task-timeout context and a timer handle per call, which at several
reads per poll cycle is a large part of a link's CPU. A ``Waker`` uses a bare future per wait and
one deadline timer per link that is re-armed lazily: a wait whose deadline is later than the armed
timer leaves the timer alone and the timer, when it fires early, re-arms itself for the newest
deadline; only a wait with an earlier deadline replaces it.
"""

from __future__ import annotations

import asyncio

DEADLINE_SLACK = 1e-6  # s: a timer firing this close to the deadline counts as on time


class Waker:
    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    @property
    def busy(self) -> bool:
        """A wait is in progress (woken or not): a second reader would be a caller's bug."""
        return self._waiter is not None

    @property
    def waiting(self) -> bool:
        """A reader waits and has not been woken yet (callbacks check this before doing work)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    async def wait(self, timeout: float) -> None:
        """Return when ``wake`` is called or ``timeout`` seconds pass (no exception either way:
        the caller looks at its buffer to know which). One reader at a time (see ``busy``)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        deadline = self._deadline = loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._expire)
        try:
            await waiter
        finally:
            self._waiter = None

    def wake(self) -> None:
        """Wake the waiting reader, if any (safe to call from any callback on the loop)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Drop the timer and wake a reader so it fails now rather than at its timeout."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.wake()

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms a new timer
        loop = waiter.get_loop()
        if loop.time() >= self._deadline - DEADLINE_SLACK:
            waiter.set_result(None)
        else:  # armed for an earlier wait: follow the current reader's deadline
            self._timer = loop.call_at(self._deadline, self._expire)
