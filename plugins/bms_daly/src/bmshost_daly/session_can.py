"""Session for Daly CAN over any CanLink: request every data id, gather the replies by id.

The replies of one poll are kept in a cache keyed by (data id, frame number), so several boards
on one bus and multi-frame replies that share an id stay apart. Missing replies are requested
again up to ``ctx.retries`` times.
"""

from __future__ import annotations

import time

from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkTimeout, NotMyBMS, UnsupportedCommand
from bmshost.link import CanLink
from bmshost.model import Command, CommandKind, Sample
from bmshost_daly import a5, can_codec
from bmshost_daly.options import DalyOptions, charge_below_offset

CARRIED = ("capacity_ah", "cycles")
FAST_IDS = (a5.SOC_PACK, a5.MOS_CAPACITY, a5.CELL_VOLTAGES, a5.CELL_TEMPS, a5.FAILURES)
SLOW_IDS = (a5.STATUS, a5.BALANCE)


class DalyCanSession(Session):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.link, CanLink):
            raise TypeError("the Daly CAN session needs a CAN link")
        self.can: CanLink = ctx.link
        opts: DalyOptions = ctx.options if ctx.options is not None else DalyOptions()
        self.board = ctx.address if ctx.address is not None else 1
        if not 1 <= self.board <= 16:
            raise ValueError(f"Daly board address must be 1..16, got {self.board}")
        self.below_is_charge = charge_below_offset(opts.current_sign, "a5")
        self.cell_count: int | None = None
        self.sensor_count: int | None = None
        # Values read at connect / in the slow poll (rated capacity, cycles), repeated in every
        # fast sample so that consumers see them without remembering slow reads themselves.
        self._carried: dict[str, float | int] = {}

    def _needed(self, data_id: int) -> set[int]:
        if data_id == a5.CELL_VOLTAGES:
            return set(range(1, -(-(self.cell_count or 1) // a5.CELLS_PER_FRAME) + 1))
        if data_id == a5.CELL_TEMPS:
            return set(range(1, -(-(self.sensor_count or 1) // a5.TEMPS_PER_FRAME) + 1))
        return {0}

    async def _gather(self, ids: tuple[int, ...]) -> list[tuple[int, bytes]]:
        cache: dict[tuple[int, int], bytes] = {}
        wanted = {(i, k) for i in ids for k in self._needed(i)}
        for _ in range(max(0, self.ctx.retries) + 1):
            missing_ids = sorted({i for i, _ in wanted - cache.keys()})
            async with self.can.exclusive():
                for data_id in missing_ids:
                    await self.can.send(can_codec.build_request(data_id, self.board))
                deadline = time.monotonic() + self.ctx.timeout
                while not wanted <= cache.keys():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    frame = await self.can.recv(remaining)
                    if frame is None:
                        break
                    try:
                        board, data_id, data = can_codec.parse_reply(frame)
                    except FrameError:
                        continue  # other traffic on the bus
                    if board != self.board or data_id not in ids:
                        continue
                    key = data[0] if data_id in a5.MULTI_FRAME_IDS else 0
                    if (data_id, key) in wanted:
                        cache[(data_id, key)] = data
            if wanted <= cache.keys():
                return [(i, cache[(i, k)]) for i, k in sorted(wanted)]
        missing = ", ".join(f"{i:02X}/{k}" for i, k in sorted(wanted - cache.keys()))
        raise LinkTimeout(
            f"{self.can.description}: Daly board {self.board} did not answer {missing}"
        )

    async def _read_ids(self, ids: tuple[int, ...]) -> Sample:
        payloads = await self._gather(ids)
        sample = a5.decode_payloads(
            payloads, self.below_is_charge, self.cell_count, self.sensor_count
        )
        sample.address = self.board
        return sample

    async def connect(self) -> Sample:
        status = await self._read_ids((a5.STATUS,))
        counts = status.extra or {}
        if not counts.get("cell_count"):
            raise NotMyBMS("Daly 0x94 reports 0 cells")
        self.cell_count = int(counts["cell_count"])
        self.sensor_count = int(counts["temp_sensor_count"]) or None
        static = status
        try:
            static = static.merge(await self._read_ids((a5.RATED,)))
        except LinkTimeout as exc:
            self.log.debug("Daly CAN 0x50 not answered: %s", exc)
        self._carry(static)
        return static.merge(await self.read())

    async def read(self) -> Sample:
        return self._with_carried(await self._read_ids(FAST_IDS))

    async def read_slow(self) -> Sample:
        sample = await self._read_ids(SLOW_IDS)
        self._carry(sample)
        return sample

    def _carry(self, sample: Sample) -> None:
        for name in CARRIED:
            value = getattr(sample, name)
            if value is not None:
                self._carried[name] = value

    def _with_carried(self, sample: Sample) -> Sample:
        for name, value in self._carried.items():
            if getattr(sample, name) is None:
                setattr(sample, name, value)
        return sample

    async def execute(self, command: Command) -> None:
        if command.kind is not CommandKind.SOC_RESET:
            raise UnsupportedCommand(f"Daly CAN has no {command.kind.value} command")
        soc = float(command.value)
        if not 0 <= soc <= 100:
            raise UnsupportedCommand(f"SoC {soc} % is outside 0..100 %")
        # The BMS does not acknowledge this frame; the next 0x90 read shows the result.
        async with self.can.exclusive():
            await self.can.send(can_codec.build_set_soc(self.board, soc))
