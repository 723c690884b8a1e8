"""JBD CAN session: listen to the master's broadcasts and build samples from the newest frames.

Nothing is requested; a read collects frames until the set is complete (SoC, measurements,
capacity, extremes), using frames of earlier reads while they are fresh (≤ 5 s), so a poll costs
one drain of the receive queue when the bus is busy. Links that offer ``drain()`` (python-can
links) hand over everything queued in one call; others are read frame by frame with ``recv``.

Most of a broadcast round repeats the previous one byte for byte (names, capacity, limits): a
frame whose data equals the kept one for its id only refreshes its time, and only frames that
changed are decoded again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

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
        # id -> [raw data, the fields its decoding set, arrival time]
        self._frames: dict[int, list[Any]] = {}
        self._pending: deque[CanFrame] = deque()  # taken from the link, not used yet (next round)
        self.bad_frames = 0
        # no cell list on this bus: the series count is a latched confident estimate
        configured = ctx.options.cells if isinstance(ctx.options, JbdOptions) else None
        self._cells = SeriesCellLatch(configured, name=ctx.link.description)

    def _can(self) -> CanLink:
        if not isinstance(self.link, CanLink):
            raise LinkError(f"{self.link.description}: JBD CAN needs a CAN link")
        return self.link

    def _fresh(self) -> dict[int, can_codec.FieldItems]:
        now = self._clock()
        return {i: e[1] for i, e in self._frames.items() if now - e[2] <= MAX_AGE}

    def _complete(self) -> bool:
        now = self._clock()
        frames = self._frames
        fresh = {i for i in can_codec.REQUIRED + can_codec.CAPACITY_IDS
                 if (e := frames.get(i)) is not None and now - e[2] <= MAX_AGE}
        return can_codec.is_complete(fresh)

    def _keep(self, frame: CanFrame, now: float) -> None:
        ident = frame.arbitration_id
        if ident not in can_codec.IDS or frame.is_extended_id:
            return  # another device on the bus
        entry = self._frames.get(ident)
        if entry is not None and entry[0] == frame.data:
            entry[2] = now  # the same value again: nothing to decode
            return
        try:
            part = can_codec.decode_frame(frame)
        except FrameError as exc:
            self.bad_frames += 1
            self.log.debug("JBD CAN: dropped %s: %s", frame.to_candump(), exc)
            return
        self._frames[ident] = [frame.data, can_codec.set_fields(part), now]

    def _sample(self) -> Sample:
        return self._cells.apply(can_codec.combine_fields(self._fresh()))

    async def read(self) -> Sample:
        """Drain what arrived since the last poll; wait for more only while incomplete.

        A read ends when the set is complete, a new 0x356 was heard in this read, and either the
        queue is empty or a frame id repeats (the next broadcast round has begun; the rest of
        what was taken stays for the next read).
        """
        link = self._can()
        drain: Callable[[], list[CanFrame]] | None = getattr(link, "drain", None)
        window = max(self.ctx.timeout, BROADCAST_PERIOD) * (self.ctx.retries + 1)
        now = self._clock()
        deadline = now + window
        heard: set[int] = set()
        pending = self._pending
        while True:
            if not pending:
                if drain is not None:
                    taken = drain()
                else:
                    queued = await link.recv(0.0)
                    taken = [queued] if queued is not None else []
                if not taken:  # nothing more queued
                    if can_codec.ID_MEASURE in heard and self._complete():
                        return self._sample()
                    waited = await link.recv(0.05)
                    now = self._clock()
                    if waited is not None:
                        pending.append(waited)
                    elif now >= deadline:
                        raise LinkTimeout(f"{link.description}: {self._missing(heard)}")
                    continue
                pending.extend(taken)
                now = self._clock()
            frame = pending.popleft()
            ident = frame.arbitration_id
            self._keep(frame, now)
            if ident in heard and can_codec.ID_MEASURE in heard and self._complete():
                return self._sample()  # a repeated id: the next round has begun
            heard.add(ident)
            if now >= deadline:
                raise LinkTimeout(f"{link.description}: {self._missing(heard)}")

    def _missing(self, heard: set[int]) -> str:
        frames = self._fresh()
        missing = [f"0x{i:03X}" for i in can_codec.REQUIRED if i not in frames]
        if not any(i in frames for i in can_codec.CAPACITY_IDS):
            missing.append("0x379/0x35F")
        if can_codec.ID_MEASURE not in heard and "0x356" not in missing:
            missing.append("a new 0x356")
        return "JBD CAN frames missing: " + ", ".join(missing)
