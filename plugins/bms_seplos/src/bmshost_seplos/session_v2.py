"""Session for Seplos v2 ASCII over any StreamLink; ``address`` is the pack's DIP address."""

from __future__ import annotations

from bmshost.driver import SessionContext
from bmshost.errors import FrameError, LinkTimeout
from bmshost.model import Sample
from bmshost_seplos import ascii_v2, v2_fields
from bmshost_seplos.options import SeplosOptions
from bmshost_seplos.session_base import StreamSession


class SeplosV2Session(StreamSession):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        opts: SeplosOptions = ctx.options if ctx.options is not None else SeplosOptions()
        self.address = ctx.address if ctx.address is not None else 0
        if not 0 <= self.address <= 0xFF:
            raise ValueError(f"Seplos v2 address must be 0..255, got {self.address}")
        group = opts.command_group
        self._telemetry = ascii_v2.build_request(self.address, ascii_v2.TELEMETRY, group)
        self._alarms = ascii_v2.build_request(self.address, ascii_v2.ALARMS, group)
        self._manufacturer = ascii_v2.build_request(self.address, ascii_v2.MANUFACTURER)

    def _parse(self, frame: bytes) -> bytes:
        address, info = ascii_v2.parse_reply(frame)
        if address != self.address:
            raise FrameError(f"Seplos reply from pack {address}, expected {self.address}")
        return info

    async def connect(self) -> Sample:
        try:
            static = v2_fields.decode_manufacturer(
                await self.transact(self._manufacturer, ascii_v2.framer, self._parse)
            )
        except (FrameError, LinkTimeout) as exc:  # optional: not every firmware answers 0x51
            self.log.debug("Seplos 0x51 not read: %s", exc)
            static = Sample()
        return static.merge(await self.read())

    async def read(self) -> Sample:
        telemetry = v2_fields.decode_telemetry(
            await self.transact(self._telemetry, ascii_v2.framer, self._parse)
        )
        alarms = v2_fields.decode_alarms(
            await self.transact(self._alarms, ascii_v2.framer, self._parse)
        )
        if telemetry.cell_voltages is not None and alarms.cell_balancing is not None:
            alarms.cell_balancing = alarms.cell_balancing[: len(telemetry.cell_voltages)]
        sample = telemetry.merge(alarms)
        sample.address = self.address
        return sample
