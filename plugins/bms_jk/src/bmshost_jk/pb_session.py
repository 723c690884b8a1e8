"""Session for the JK PB inverter BMS on RS485 (trigger protocol), one per DIP address.

Several packs share one bus and one link: every transaction holds ``link.exclusive()``, starts
with an empty input buffer (USB adapters keep stale bytes and echo what we send) and keeps a
quiet gap after the previous command on the same bus, whichever session sent it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable

from bmshost.driver import Session, SessionContext
from bmshost.errors import ConfigError, FrameError, LinkTimeout
from bmshost.link import StreamLink
from bmshost.model import Sample
from bmshost_jk import jk02, pb_codec
from bmshost_jk.common import stream_link, with_retries
from bmshost_jk.options import JkOptions

# Last command time per bus, shared by all sessions on that link.
_LAST_COMMAND: weakref.WeakKeyDictionary[StreamLink, float] = weakref.WeakKeyDictionary()


class PbSession(Session):
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self.stream = stream_link(ctx)
        address = 1 if ctx.address is None else ctx.address
        try:
            self.address = pb_codec.check_address(address)
        except ValueError as exc:
            raise ConfigError(f"address: {exc}") from None
        options = ctx.options if isinstance(ctx.options, JkOptions) else JkOptions()
        self.gap = options.pb_command_gap
        self.identity = Sample(address=self.address)
        self.settings: Sample | None = None

    async def _transaction(self, register: int) -> bytes:
        request = pb_codec.build_trigger(self.address, register)

        async def attempt() -> bytes:
            async with self.stream.exclusive():
                wait = _LAST_COMMAND.get(self.stream, -1e9) + self.gap - self.clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    frame = await self.stream.request(request, pb_codec.framer, self.ctx.timeout)
                finally:
                    _LAST_COMMAND[self.stream] = self.clock()
            return pb_codec.check_reply(frame, self.address, register)

        return await with_retries(
            self.ctx, f"JK PB address {self.address} trigger 0x{register:04x}", attempt
        )

    async def _read_settings(self) -> Sample:
        self.settings = jk02.parse_settings(await self._transaction(pb_codec.TRIGGER_SETTINGS))
        return self.settings

    async def connect(self) -> Sample:
        await self._read_settings()
        try:
            about = await self._transaction(pb_codec.TRIGGER_ABOUT)
        except (FrameError, LinkTimeout) as exc:
            # Firmware >= 15.36 does not always answer the about trigger: carry on without it.
            self.log.info("JK PB address %d: no device info (%s)", self.address, exc)
        else:
            self.identity = jk02.parse_device_info(about)
            self.identity.address = self.address
        return await self.read()

    async def read(self) -> Sample:
        status = jk02.parse_cell_info(await self._transaction(pb_codec.TRIGGER_STATUS), 32)
        sample = self.identity.merge(status)
        if self.settings is not None:
            sample = sample.merge(self.settings)
        return sample

    async def read_slow(self) -> Sample:
        return await self._read_settings()
