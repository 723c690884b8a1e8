"""Session for the Daly BLE "D2" (Modbus-like) protocol over a StreamLink (BLE notifications).

Reads the 80 status registers per poll and the version block once at connect. The protocol has
no documented write registers, so this variant supports no commands.
"""

from __future__ import annotations

from bmshost.capabilities import Capability
from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkTimeout
from bmshost.link import StreamLink
from bmshost.model import Sample
from bmshost_daly import modbus
from bmshost_daly.options import DalyOptions, charge_below_offset


class DalyD2Session(Session):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.link, StreamLink):
            raise TypeError("the Daly D2 session needs a stream link")
        self.stream: StreamLink = ctx.link
        opts: DalyOptions = ctx.options if ctx.options is not None else DalyOptions()
        self.below_is_charge = charge_below_offset(opts.current_sign, "d2")
        self.cell_slots = opts.d2_cell_slots
        self._status_request = modbus.build_read(modbus.STATUS_START, opts.d2_cell_slots + 0x30)
        self._has_mosfet_sensor = True
        self._version_request = modbus.build_read(
            modbus.VERSION_START + (0x10 if opts.d2_cell_slots == 48 else 0), modbus.VERSION_COUNT
        )

    @property
    def capabilities(self) -> frozenset[Capability]:
        caps = self.ctx.variant.capabilities
        if not self._has_mosfet_sensor:  # register 0x42 reads 0/FFFF: no sensor fitted
            caps = caps - {Capability.MOSFET_TEMPERATURE}
        return caps

    async def _registers(self, tx: bytes) -> list[int]:
        error: Exception | None = None
        for _ in range(max(0, self.ctx.retries) + 1):
            async with self.stream.exclusive():
                try:
                    frame = await self.stream.request(tx, modbus.framer, self.ctx.timeout)
                    return modbus.parse_reply(frame)
                except (FrameError, LinkTimeout) as exc:
                    error = exc
        assert error is not None
        raise error

    async def connect(self) -> Sample:
        try:
            static = modbus.decode_version(await self._registers(self._version_request))
        except (FrameError, LinkTimeout) as exc:  # some modules lack the version block
            self.log.debug("Daly D2 version block not read: %s", exc)
            static = Sample()
        sample = static.merge(await self.read())
        self._has_mosfet_sensor = sample.mosfet_temperature is not None
        return sample

    async def read(self) -> Sample:
        regs = await self._registers(self._status_request)
        return modbus.decode_status(regs, self.below_is_charge, self.cell_slots)
