"""The newest frame per CAN id, with the expiry rules of broadcast protocols.

A BMS on CAN repeats its frames (about once a second); the cache keeps the last one per id so a
driver can build a complete sample from frames that arrived at different times. An entry older
than ``max_age`` is stale and not returned; after ``silence`` seconds without any frame the whole
cache is dropped (the bus went quiet: nothing in it describes the battery any more).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bmshost.link import CanFrame


class FrameCache:
    def __init__(
        self,
        max_age: float = 5.0,
        silence: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.silence = silence
        self._clock = clock
        self._frames: dict[int, tuple[CanFrame, float]] = {}
        self._last: float | None = None

    def put(self, frame: CanFrame) -> None:
        now = self._clock()
        self._frames[frame.arbitration_id] = (frame, now)
        self._last = now

    def put_many(self, frames: list[CanFrame]) -> None:
        """File the frames of one burst (they arrived together: one time for all)."""
        now = self._clock()
        cache = self._frames
        for frame in frames:
            cache[frame.arbitration_id] = (frame, now)
        self._last = now

    def _check_silence(self, now: float) -> None:
        if self._last is not None and now - self._last > self.silence:
            self._frames.clear()

    def get(self, arb_id: int) -> CanFrame | None:
        now = self._clock()
        self._check_silence(now)
        entry = self._frames.get(arb_id)
        if entry is None or now - entry[1] > self.max_age:
            return None
        return entry[0]

    def snapshot(self) -> dict[int, CanFrame]:
        """Every fresh frame, by id."""
        now = self._clock()
        self._check_silence(now)
        return {i: f for i, (f, t) in self._frames.items() if now - t <= self.max_age}

    @property
    def last_frame_age(self) -> float | None:
        return None if self._last is None else self._clock() - self._last

    def clear(self) -> None:
        self._frames.clear()
