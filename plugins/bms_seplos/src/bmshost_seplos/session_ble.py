"""Session for Seplos v2 over BLE (binary frames); notifications arrive as stream bytes."""

from __future__ import annotations

from bmshost.driver import SessionContext
from bmshost.errors import FrameError, LinkTimeout
from bmshost.model import Sample
from bmshost_seplos import binary_v2
from bmshost_seplos.session_base import StreamSession


class SeplosBleSession(StreamSession):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self._telemetry = binary_v2.build_request(binary_v2.TELEMETRY)
        self._parallel = binary_v2.build_request(binary_v2.PARALLEL)
        self._manufacturer = binary_v2.build_request(binary_v2.MANUFACTURER)

    async def connect(self) -> Sample:
        try:
            static = await self.transact(
                self._manufacturer, binary_v2.framer, binary_v2.decode_reply
            )
        except (FrameError, LinkTimeout) as exc:
            self.log.debug("Seplos BLE 0x51 not read: %s", exc)
            static = Sample()
        return static.merge(await self.read())

    async def read(self) -> Sample:
        telemetry = await self.transact(self._telemetry, binary_v2.framer, binary_v2.decode_reply)
        switches = await self.transact(self._parallel, binary_v2.framer, binary_v2.decode_reply)
        return telemetry.merge(switches)
