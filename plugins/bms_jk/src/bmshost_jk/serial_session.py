"""Session for the JK RS485/UART (0x4E57) protocol: one read-all request per poll."""

from __future__ import annotations

from bmshost.driver import Session, SessionContext
from bmshost.model import Sample
from bmshost_jk import serial_codec
from bmshost_jk.common import stream_link, with_retries


class SerialSession(Session):
    """The read-all reply carries everything (cells, switches, settings, identity), so
    ``connect`` and ``read`` are the same request and ``read_slow`` has nothing to add.

    No writes: the protocol has a write command, but it needs a password handshake whose frame
    layout no source documents; switching FETs on a guess is not acceptable.
    """

    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self.stream = stream_link(ctx)

    async def read(self) -> Sample:
        async def attempt() -> Sample:
            async with self.stream.exclusive():
                frame = await self.stream.request(
                    serial_codec.READ_ALL_REQUEST, serial_codec.framer, self.ctx.timeout
                )
            return serial_codec.parse_frame(frame)

        return await with_retries(self.ctx, "JK serial read-all", attempt)
