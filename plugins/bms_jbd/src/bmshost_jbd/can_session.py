"""JBD CAN session: listen to the master's broadcasts and build samples from the newest frames.

Nothing is requested; a read collects frames until the set is complete (SoC, measurements,
capacity, extremes), using frames of earlier reads while they are fresh (≤ 5 s), so a poll costs
one drain of the receive queue when the bus is busy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bmshost.cellcount import SeriesCellLatch
from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkError, LinkTimeout
from bmshost.link import CanFrame, CanLink
from bmshost.model import Sample
from bmshost_jbd import can_codec
from bmshost_jbd.options import JbdOptions

MAX_AGE = 5.0  # s: a frame older than this no longer describes the battery
BROADCAST_PERIOD = 1.0  # s: how often the BMS repeats its frames


class JbdCanSession(Session):
    def __init__(self, ctx: SessionContext, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ctx)
        self._clock = clock
        self._frames: dict[int, tuple[Sample, float]] = {}  # id -> (decoded frame, arrival)
        self.bad_frames = 0
        # no cell list on this bus: the series count is a latched confident estimate
        configured = ctx.options.cells if isinstance(ctx.options, JbdOptions) else None
        self._cells = SeriesCellLatch(configured, name=ctx.link.description)

    def _can(self) -> CanLink:
        if not isinstance(self.link, CanLink):
            raise LinkError(f"{self.link.description}: JBD CAN needs a CAN link")
        return self.link

    def _fresh(self) -> dict[int, Sample]:
        now = self._clock()
        return {i: s for i, (s, t) in self._frames.items() if now - t <= MAX_AGE}

    def _keep(self, frame: CanFrame) -> None:
        if frame.arbitration_id not in can_codec.IDS or frame.is_extended_id:
            return  # another device on the bus
        try:
            part = can_codec.decode_frame(frame)
        except FrameError as exc:
            self.bad_frames += 1
            self.log.debug("JBD CAN: dropped %s: %s", frame.to_candump(), exc)
            return
        self._frames[frame.arbitration_id] = (part, self._clock())

    async def read(self) -> Sample:
        """Drain what arrived since the last poll; wait for more only while incomplete.

        A read ends when the set is complete, a new 0x356 was heard in this read, and either the
        queue is empty or a frame id repeats (the next broadcast round has begun).
        """
        link = self._can()
        window = max(self.ctx.timeout, BROADCAST_PERIOD) * (self.ctx.retries + 1)
        deadline = self._clock() + window
        heard: set[int] = set()
        while True:
            ready = can_codec.ID_MEASURE in heard and can_codec.is_complete(set(self._fresh()))
            frame = await link.recv(0.0 if ready else 0.05)
            if frame is None:
                if ready:
                    return self._cells.apply(can_codec.combine_decoded(self._fresh()))
            else:
                self._keep(frame)
                repeated = frame.arbitration_id in heard
                heard.add(frame.arbitration_id)
                if repeated and ready:
                    return self._cells.apply(can_codec.combine_decoded(self._fresh()))
            if self._clock() >= deadline:
                raise LinkTimeout(f"{link.description}: {self._missing(heard)}")

    def _missing(self, heard: set[int]) -> str:
        frames = self._fresh()
        missing = [f"0x{i:03X}" for i in can_codec.REQUIRED if i not in frames]
        if not any(i in frames for i in can_codec.CAPACITY_IDS):
            missing.append("0x379/0x35F")
        if can_codec.ID_MEASURE not in heard and "0x356" not in missing:
            missing.append("a new 0x356")
        return "JBD CAN frames missing: " + ", ".join(missing)
