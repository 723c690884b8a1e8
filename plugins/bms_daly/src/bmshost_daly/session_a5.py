"""Session for the Daly A5 protocol over any StreamLink (serial/RS485, TCP gateways, BLE A5).

Daisy chain: ``address`` is the Daly board number (1..16); the host address is 0x3F + board and
replies carry the board number. Several sessions share one link, so every transaction holds
``link.exclusive()``. Stale frames (e.g. the unused cell frames of firmware that always sends 16)
are skipped by data id instead of being mistaken for the next reply.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkTimeout, NotMyBMS, UnsupportedCommand
from bmshost.link import StreamLink
from bmshost.model import Command, CommandKind, Sample
from bmshost_daly import a5
from bmshost_daly.options import DalyOptions, charge_below_offset

# Frames needed per multi-frame id, given the pack's counts.
CARRIED = ("capacity_ah", "cycles")
FAST_IDS = (a5.SOC_PACK, a5.MOS_CAPACITY, a5.CELL_VOLTAGES, a5.CELL_TEMPS, a5.FAILURES)
SLOW_IDS = (a5.STATUS, a5.BALANCE)
STATUS_ATTEMPTS = 3
MAX_CURRENT = 1000.0  # A; a larger value is a corrupt frame (the word is 0.1 A)


class DalyA5Session(Session):
    def __init__(
        self, ctx: SessionContext, now: Callable[[], dt.datetime] = dt.datetime.now
    ) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.link, StreamLink):
            raise TypeError("the Daly A5 session needs a stream link")
        self.stream: StreamLink = ctx.link
        opts: DalyOptions = ctx.options if ctx.options is not None else DalyOptions()
        if ctx.address is not None and not 1 <= ctx.address <= 16:
            raise ValueError(f"Daly board address must be 1..16, got {ctx.address}")
        self.board = ctx.address
        self.host = (
            opts.host_address if opts.host_address is not None else a5.host_address_for(ctx.address)
        )
        self._host_fixed = opts.host_address is not None or ctx.address is not None
        self.below_is_charge = charge_below_offset(opts.current_sign, "a5")
        self.cell_count: int | None = None
        self.sensor_count: int | None = None
        # Values read at connect / in the slow poll (rated capacity, cycles), repeated in every
        # fast sample so that consumers see them without remembering slow reads themselves.
        self._carried: dict[str, float | int] = {}
        self.now = now  # clock for the SoC write's date stamp (injected in tests)

    # -- transactions ------------------------------------------------------------------------------

    def _frames_needed(self, data_id: int) -> int:
        if data_id == a5.CELL_VOLTAGES:
            return -(-(self.cell_count or 1) // a5.CELLS_PER_FRAME)
        if data_id == a5.CELL_TEMPS:
            return -(-(self.sensor_count or 1) // a5.TEMPS_PER_FRAME)
        if data_id == a5.BATTERY_CODE:
            return a5.CODE_FRAMES
        return 1

    async def _collect(self, tx: bytes, data_id: int, needed: int, timeout: float) -> list[bytes]:
        """Write ``tx`` and gather the data fields of ``needed`` replies to ``data_id``."""
        self.stream.discard_input()
        await self.stream.write(tx)
        deadline = time.monotonic() + timeout
        got: dict[int, bytes] = {}
        raw: list[bytes] = []
        try:
            while len(got) < needed:
                remaining = deadline - time.monotonic()
                frame = await self.stream.read_frame(a5.framer, max(remaining, 0.0))
                raw.append(frame)
                address, rid, data = a5.parse_frame(frame)
                if rid != data_id or (self.board is not None and address != self.board):
                    continue  # a stale frame of an earlier command, or another board's
                key = data[0] if data_id in a5.MULTI_FRAME_IDS else 0
                if data_id in a5.MULTI_FRAME_IDS and key > needed:
                    continue  # unused trailing frames of firmware that always sends 16
                got[key] = data
        finally:
            if self.stream.recorder is not None:
                self.stream.recorder.record(tx.hex(), [f.hex() for f in raw])
        return [got[k] for k in sorted(got)]

    async def _query(self, tx: bytes, data_id: int, needed: int = 1) -> list[bytes]:
        """One request with retries; the link is held for the whole exchange."""
        error: Exception | None = None
        for _ in range(max(0, self.ctx.retries) + 1):
            async with self.stream.exclusive():
                try:
                    return await self._collect(tx, data_id, needed, self.ctx.timeout)
                except (FrameError, LinkTimeout) as exc:
                    error = exc
        assert error is not None
        raise error

    async def _read_ids(self, ids: tuple[int, ...]) -> Sample:
        payloads: list[tuple[int, bytes]] = []
        for data_id in ids:
            datas = await self._query(
                a5.build_request(self.host, data_id), data_id, self._frames_needed(data_id)
            )
            payloads += [(data_id, d) for d in datas]
        sample = a5.decode_payloads(
            payloads, self.below_is_charge, self.cell_count, self.sensor_count
        )
        sample.address = self.board
        return sample

    # -- Session API -------------------------------------------------------------------------------

    async def connect(self) -> Sample:
        hosts = [self.host] if self._host_fixed else [self.host, 0x80]
        status: Sample | None = None
        for host in hosts:
            self.host = host
            try:
                status = await self._read_ids((a5.STATUS,))
                break
            except LinkTimeout:
                if host == hosts[-1]:
                    raise
        if status is None:  # pragma: no cover - the loop either sets it or raises
            raise LinkTimeout("Daly: no host address answered")
        counts = status.extra or {}
        for _ in range(STATUS_ATTEMPTS - 1):  # a booting BMS reports 0 cells for a moment
            if counts.get("cell_count"):
                break
            status = await self._read_ids((a5.STATUS,))
            counts = status.extra or {}
        if not counts.get("cell_count"):
            raise NotMyBMS(f"Daly 0x94 reports 0 cells after {STATUS_ATTEMPTS} reads")
        self.cell_count = int(counts["cell_count"])
        self.sensor_count = int(counts["temp_sensor_count"]) or None
        static = status
        for data_id in (a5.BATTERY_CODE, a5.RATED, a5.DETAILS):
            try:  # optional: older firmware does not answer these
                static = static.merge(await self._read_ids((data_id,)))
            except (FrameError, LinkTimeout) as exc:
                self.log.debug("Daly %02X not answered: %s", data_id, exc)
        self._carry(static)
        return static.merge(await self.read())

    async def read(self) -> Sample:
        sample = await self._read_ids(FAST_IDS)
        if sample.soc is not None and not 0 <= sample.soc <= 100:
            raise FrameError(f"Daly 0x90: implausible SoC {sample.soc} %")
        if sample.current is not None and abs(sample.current) >= MAX_CURRENT:
            raise FrameError(f"Daly 0x90: implausible current {sample.current} A")
        return self._with_carried(sample)

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
        if command.kind is CommandKind.SOC_RESET:
            soc = float(command.value)
            if not 0 <= soc <= 100:
                raise UnsupportedCommand(f"SoC {soc} % is outside 0..100 %")
            tx = a5.build_set_soc(self.host, soc, self.now())
            data = await self._query(tx, a5.SET_SOC)
            if data[0][0] != 1:
                raise FrameError(f"Daly refused the SoC write (reply {data[0][0]})")
            return
        if command.kind in (CommandKind.CHARGE_FET, CommandKind.DISCHARGE_FET):
            data_id = a5.CHARGE_MOS if command.kind is CommandKind.CHARGE_FET else a5.DISCHARGE_MOS
            on = bool(command.value)
            data = await self._query(a5.build_switch(self.host, data_id, on), data_id)
            if data[0][0] != int(on):
                raise FrameError(
                    f"Daly refused the {command.kind.value} switch (reply {data[0][0]})"
                )
            return
        raise UnsupportedCommand(f"Daly has no {command.kind.value} command")
