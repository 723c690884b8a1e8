"""Session for Seplos v3 Modbus RTU over any StreamLink (RS485, TCP gateway, BLE fff0).

``address`` is the pack's Modbus id (0 = the single pack's default; 1..15 on a chain). Each poll
reads PIA (pack values, current limits), PIB (cells, temperatures) and the PIC coils (balancing,
live alarm events, FET and heater state).
"""

from __future__ import annotations

from bmshost.driver import SessionContext
from bmshost.errors import FrameError, LinkTimeout, NotMyBMS
from bmshost.model import Sample
from bmshost_seplos import modbus_v3 as mb
from bmshost_seplos.session_base import StreamSession

FACTORY = "XZH-ElecTech"


class SeplosV3Session(StreamSession):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self.device = ctx.address if ctx.address is not None else 0
        if not 0 <= self.device <= 0xF7:
            raise ValueError(f"Seplos v3 Modbus id must be 0..247, got {self.device}")
        self.cell_count: int | None = None

    async def _read(self, function: int, start: int, count: int) -> bytes:
        tx = mb.build_read(self.device, function, start, count)
        return await self.transact(
            tx, mb.framer, lambda frame: mb.parse_reply(frame, self.device, function)
        )

    async def _regs(self, start: int, count: int) -> list[int]:
        return mb.registers(await self._read(mb.READ_INPUTS, start, count))

    async def connect(self) -> Sample:
        identity = mb.decode_via(await self._regs(mb.VIA, mb.VIA_COUNT))
        maker = (identity.extra or {}).get("manufacturer") or ""
        if FACTORY not in str(maker):
            raise NotMyBMS(f"Seplos v3 identity block names {maker!r}, not {FACTORY}")
        try:
            spa = await self._regs(mb.SPA, 2)
            self.cell_count = spa[1] or None
        except (FrameError, LinkTimeout) as exc:
            self.log.debug("Seplos v3 SPA not read: %s", exc)
        return identity.merge(await self.read())

    async def read(self) -> Sample:
        pia = mb.decode_pia(await self._regs(mb.PIA, mb.PIA_COUNT))
        pib = mb.decode_pib(await self._regs(mb.PIB, mb.PIB_COUNT), self.cell_count)
        pic = mb.decode_pic(await self._read(mb.READ_COILS, mb.PIC, mb.PIC_COUNT), self.cell_count)
        if pic.cell_balancing is not None and pib.cell_voltages is not None:
            pic.cell_balancing = pic.cell_balancing[: len(pib.cell_voltages)]
        sample = pia.merge(pib).merge(pic)
        sample.address = self.device
        return sample
