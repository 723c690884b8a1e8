"""Session for JK CAN (v1 and v2): listen to the broadcasts, keep the newest frame per id.

Packs with different device addresses share one bus (their ids are shifted by the address), so
the frame cache belongs to the bus, not to a session: whichever session receives a frame files
it, and each session decodes its own ids from the shared cache. A poll first takes everything
already queued (values are current, not a poll interval old), then waits until every frame the
variant needs is recent. Frames older than ``can_max_age`` are forgotten, so a BMS that went
quiet shows as offline instead of freezing its last values.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

from bmshost.cellcount import SeriesCellLatch
from bmshost.driver import Session, SessionContext
from bmshost.errors import LinkTimeout
from bmshost.link import CanLink
from bmshost.model import Sample
from bmshost_jk import can_codec
from bmshost_jk.common import can_link
from bmshost_jk.options import JkOptions

DRAIN_CAP = 512  # frames taken per poll at most (a busy bus must not keep a poll going)
LEARN_QUIET = 0.6  # s without a new cell frame id ends learning (slowest JK period: 0.5 s)
FRESH_WINDOW = 1.0  # s: a frame this recent counts as current (slowest JK period is 0.5 s)
REQUIRED_V1 = (can_codec.BATT_ST, can_codec.CELL_VOLT, can_codec.CELL_TEMP)
REQUIRED_V2 = (*REQUIRED_V1, can_codec.BATT_ST2, can_codec.ALL_TEMP, can_codec.SWITCH_STATE,
               can_codec.CELL_FRAMES[0])

# Raw CAN id -> (receive time, data), per bus.
_BUS_CACHE: weakref.WeakKeyDictionary[CanLink, dict[int, tuple[float, bytes]]] = (
    weakref.WeakKeyDictionary()
)


class CanSession(Session):
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self.bus = can_link(ctx)
        self.options = ctx.options if isinstance(ctx.options, JkOptions) else JkOptions()
        self.address = ctx.address or 0
        required = REQUIRED_V2 if ctx.variant.name == "can_v2" else REQUIRED_V1
        self.required = tuple(i + self.address for i in required)
        self.cache = _BUS_CACHE.setdefault(self.bus, {})
        self.cell_frames = 0  # cell frames (4 cells each) this pack sends, learned in connect()
        self._cells = SeriesCellLatch(self.options.cells, name=ctx.link.description)

    def _cell_frames_cached(self) -> int:
        n = 0
        for ident in can_codec.CELL_FRAMES:
            if ident + self.address not in self.cache:
                break
            n += 1
        return n

    async def connect(self) -> Sample:
        """Listen until the set of cell frames stops growing for a whole broadcast period (or
        the request timeout ends), so the first sample already has every cell."""
        deadline = time.monotonic() + self.ctx.timeout
        quiet_since = time.monotonic()
        known = self._cell_frames_cached()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < LEARN_QUIET:
            remaining = min(deadline, quiet_since + LEARN_QUIET) - time.monotonic()
            if not await self._take(max(0.0, remaining)):
                continue
            seen = self._cell_frames_cached()
            if seen > known:
                known, quiet_since = seen, time.monotonic()
        self.cell_frames = known
        return await self.read()

    def _wanted(self) -> tuple[int, ...]:
        cells = tuple(i + self.address for i in can_codec.CELL_FRAMES[: self.cell_frames])
        return self.required + cells

    def _complete(self) -> bool:
        now = self.clock()
        for ident in self._wanted():
            entry = self.cache.get(ident)
            if entry is None or now - entry[0] > FRESH_WINDOW:
                return False
        return True

    async def _take(self, timeout: float) -> bool:
        frame = await self.bus.recv(timeout)
        if frame is None:
            return False
        self.cache[frame.arbitration_id] = (self.clock(), frame.data)
        return True

    async def read(self) -> Sample:
        # The wait is bounded by real time; frame ages use the (injectable) clock.
        deadline = time.monotonic() + self.ctx.timeout
        taken = 0
        while taken < DRAIN_CAP and await self._take(0.0):  # what is already queued
            taken += 1
        while not self._complete() and taken < DRAIN_CAP:  # then the rest of the set
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            taken += await self._take(remaining)
        while taken < DRAIN_CAP and await self._take(0.0):  # the rest of the burst
            taken += 1
        now = self.clock()
        for ident in [i for i, (t, _) in self.cache.items() if now - t > self.options.can_max_age]:
            del self.cache[ident]
        mine = {}
        for raw, (_, data) in self.cache.items():
            ident = raw - self.address
            if ident in can_codec.KNOWN_IDS:
                mine[ident] = data
        if can_codec.BATT_ST not in mine:
            raise LinkTimeout(
                f"JK CAN: no BATT_ST frame (id 0x{can_codec.BATT_ST + self.address:X}) "
                f"within {self.ctx.timeout:g} s"
            )
        sample = can_codec.decode_cache(
            mine, charge_positive=self.options.can_current_positive == "charge"
        )
        if self.address:
            sample.address = self.address
        return self._cells.apply(sample)
