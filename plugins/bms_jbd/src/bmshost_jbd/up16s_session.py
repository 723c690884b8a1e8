"""JBD UP16S session: one per pack address on a shared RS485 link (address 1 = master).

Reads the pack status every poll; the master's status carries bank-wide charge/discharge limits,
so for the master the published limit is the smaller of its own limit (function 0x45) and the
bank's, as the reference driver does. Optional blocks (product info, pack parameters, 0x45) are
tried up to ``OPTIONAL_TRIES`` times per session and then left alone: older firmware lacks them.
"""

from __future__ import annotations

from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkError, UnsupportedCommand
from bmshost.link import StreamLink
from bmshost.model import Command, CommandKind, Sample
from bmshost_jbd import up16s_codec as codec

OPTIONAL_TRIES = 5
MASTER = 1


class Up16sSession(Session):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self.address = MASTER if ctx.address is None else ctx.address
        if not 1 <= self.address <= 0xFF:
            raise ValueError(f"UP16S address {self.address} is outside 1..255")
        self._failures: dict[str, int] = {}
        # Product information has the full firmware version; a relayed pack status only the
        # major number. Once known, the full one is reported on every read.
        self._firmware: str | None = None

    def _stream(self) -> StreamLink:
        if not isinstance(self.link, StreamLink):
            raise LinkError(f"{self.link.description}: UP16S needs a byte-stream link")
        return self.link

    async def _transact(self, request: bytes, function: int) -> bytes:
        """One request and its validated reply from this pack; ``ctx.retries`` extra tries."""
        link = self._stream()
        last: Exception | None = None
        for _ in range(self.ctx.retries + 1):
            try:
                async with link.exclusive():  # packs of a chain share the cable
                    frame = await link.request(request, codec.find_frame, self.ctx.timeout)
                address, got, _, _ = codec.split(frame)
                if address != self.address or got != function:
                    raise FrameError(
                        f"UP16S reply from address {address} function 0x{got:02x}, expected "
                        f"{self.address} / 0x{function:02x}"
                    )
                return frame
            except (LinkError, FrameError) as exc:
                last = exc
                self.log.debug("UP16S %d: request %s failed: %s", self.address, request.hex(), exc)
        assert last is not None
        raise last

    async def _optional(self, name: str, request: bytes, function: int) -> Sample | None:
        """A block older firmware may lack: give up on it after a few failed sessions."""
        if self._failures.get(name, 0) >= OPTIONAL_TRIES:
            return None
        try:
            sample = codec.parse_response(await self._transact(request, function))
        except (LinkError, FrameError) as exc:
            self._failures[name] = self._failures.get(name, 0) + 1
            if self._failures[name] >= OPTIONAL_TRIES:
                self.log.info(
                    "UP16S %d: %s unavailable (%s); not asking again", self.address, name, exc
                )
            return None
        self._failures[name] = 0
        return sample

    async def connect(self) -> Sample:
        sample = Sample(address=self.address)
        for name, span in (
            ("product information", codec.PRODUCT_INFO),
            ("pack parameters", codec.PACK_PARAMS_1),
        ):
            part = await self._optional(name, codec.read_request(self.address, span), codec.READ)
            if part is not None:
                sample = sample.merge(part)
        self._firmware = sample.firmware_version
        return (await self.read()).merge(sample)

    async def read(self) -> Sample:
        frame = await self._transact(
            codec.read_request(self.address, codec.PACK_STATUS), codec.READ
        )
        sample = codec.parse_response(frame)
        if self._firmware:
            sample.firmware_version = self._firmware
        if self.address == MASTER:
            own = await self._optional(
                "own status (0x45)", codec.own_status_request(MASTER), codec.OWN_STATUS
            )
            if own is not None and own.extra:
                sample = self._own_limits(sample, own.extra)
        return sample.fill_derived()

    @staticmethod
    def _own_limits(sample: Sample, own: dict[str, object]) -> Sample:
        """Master: publish min(own, bank) limits; keep both in ``extra``."""
        extra = dict(sample.extra or {})
        extra["bank_charge_current_limit"] = sample.bms_charge_current_limit
        extra["bank_discharge_current_limit"] = sample.bms_discharge_current_limit
        own_ccl, own_dcl = (
            own.get("own_charge_current_limit"),
            own.get("own_discharge_current_limit"),
        )
        extra.update(own)
        sample.extra = extra
        if isinstance(own_ccl, float) and sample.bms_charge_current_limit is not None:
            sample.bms_charge_current_limit = min(own_ccl, sample.bms_charge_current_limit)
        if isinstance(own_dcl, float) and sample.bms_discharge_current_limit is not None:
            sample.bms_discharge_current_limit = min(own_dcl, sample.bms_discharge_current_limit)
        return sample

    async def read_slow(self) -> Sample:
        part = await self._optional(
            "pack parameters 2", codec.read_request(self.address, codec.PACK_PARAMS_2), codec.READ
        )
        return part if part is not None else Sample()

    async def execute(self, command: Command) -> None:
        if command.kind is not CommandKind.SOC_RESET:
            raise UnsupportedCommand(f"{command.kind.value} is not supported by JBD UP16S")
        try:
            request = codec.set_soc_request(self.address, float(command.value))
        except ValueError as exc:
            raise UnsupportedCommand(str(exc)) from None
        frame = await self._transact(request, codec.WRITE)
        codec.parse_response(frame)  # the ack must have no payload
