"""JBD serial session: request/response over a byte link, retries, the write commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bmshost.driver import Session
from bmshost.errors import FrameError, LinkError, UnsupportedCommand
from bmshost.link import StreamLink
from bmshost.model import Command, CommandKind, Sample
from bmshost_jbd import codec


class JbdSession(Session):
    """Reads 0x03 + 0x04 every poll, 0x05 and 0xAA on the slow schedule."""

    def _stream(self) -> StreamLink:
        if not isinstance(self.link, StreamLink):
            raise LinkError(f"{self.link.description}: JBD needs a byte-stream link")
        return self.link

    async def _transact(self, request: bytes) -> tuple[int, bytes]:
        """One request, one validated reply ``(register, data)``; ``ctx.retries`` extra attempts."""
        link = self._stream()
        last: Exception | None = None
        for _attempt in range(self.ctx.retries + 1):
            try:
                async with link.exclusive():
                    frame = await link.request(request, codec.find_frame, self.ctx.timeout)
                return codec.split_response(frame)
            except (LinkError, FrameError) as exc:
                last = exc
                self.log.debug("JBD request %s failed: %s", request.hex(), exc)
        assert last is not None
        raise last

    async def _read_register(self, request: bytes) -> Sample:
        return codec.parse_data(*await self._transact(request))

    async def connect(self) -> Sample:
        info = await self._read_register(codec.READ_HARDWARE)
        return info.merge(await self.read())

    async def read(self) -> Sample:
        basic = await self._read_register(codec.READ_BASIC)
        cells = await self._read_register(codec.READ_CELLS)
        return basic.merge(cells).fill_derived()

    async def read_slow(self) -> Sample:
        info = await self._read_register(codec.READ_HARDWARE)
        try:
            counts = await self._read_register(codec.READ_ERROR_COUNTS)
        except FrameError:
            counts = Sample()  # older firmware has no 0xAA register: not an error
        return info.merge(counts)

    async def execute(self, command: Command) -> None:
        if command.kind in (CommandKind.CHARGE_FET, CommandKind.DISCHARGE_FET):
            # Register 0xE1 sets both FETs at once: keep the other one as it is now.
            basic = await self._read_register(codec.READ_BASIC)
            charge_on = bool(basic.charge_fet)
            discharge_on = bool(basic.discharge_fet)
            if command.kind is CommandKind.CHARGE_FET:
                charge_on = bool(command.value)
            else:
                discharge_on = bool(command.value)
            await self._transact(codec.mos_control(not charge_on, not discharge_on))
        elif command.kind is CommandKind.BALANCE:
            await self._in_factory_mode(self._set_balancer, bool(command.value))
        elif command.kind is CommandKind.SOC_RESET:
            if float(command.value) != 100.0:
                raise UnsupportedCommand("JBD can only reset its SoC to 100 %")
            basic = await self._read_register(codec.READ_BASIC)
            if basic.voltage is None:
                raise FrameError("JBD basic info without pack voltage")
            # The reference driver's method: write the present pack voltage (0.1 V) into the
            # "full" capacity point so the BMS re-learns 100 % now.
            await self._in_factory_mode(self._write_register, codec.REG_CAP_100, round(basic.voltage * 10))
        else:
            raise UnsupportedCommand(f"{command.kind.value} is not supported by JBD")

    async def _write_register(self, reg: int, value: int) -> None:
        await self._transact(codec.write_register(reg, value))

    async def _set_balancer(self, enable: bool) -> None:
        _, data = await self._transact(codec.build_request(codec.REG_FUNCTION_CONFIG))
        if len(data) != 2:
            raise FrameError("JBD function config register should hold 2 bytes")
        value = int.from_bytes(data, "big")
        bit = codec.FUNCTION_BALANCE_BIT
        await self._write_register(codec.REG_FUNCTION_CONFIG, value | bit if enable else value & ~bit)

    async def _in_factory_mode(self, action: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run EEPROM work inside factory mode; always leave it (saving only on success)."""
        await self._transact(codec.FACTORY_ENTER)
        ok = False
        try:
            await action(*args)
            ok = True
        finally:
            await self._transact(codec.FACTORY_EXIT_SAVE if ok else codec.FACTORY_EXIT_DISCARD)
