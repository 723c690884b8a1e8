"""Session for JK BLE (JK02 records) over any StreamLink whose reads are the notifications.

Connect: ask for device info (0x97) to learn model, serial and the cell-slot layout, then for
cell info (0x96), which the BMS answers with a settings record and then a cell-info record it
keeps streaming about once a second. A poll takes the newest streamed record already received;
when none is there it asks again, so a BMS that stopped streaming is recovered, not waited on.
"""

from __future__ import annotations

import time

from bmshost.capabilities import Capability
from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkTimeout, NotMyBMS, UnsupportedCommand
from bmshost.model import Command, CommandKind, Sample
from bmshost_jk import jk02
from bmshost_jk.common import stream_link, with_retries
from bmshost_jk.options import JkOptions

DRAIN_TIMEOUT = 0.01  # s: pull notifications that already arrived without waiting for more
DRAIN_MAX_RECORDS = 16  # a poll never spends longer than this many records catching up
_WRITE_REGISTER = {
    CommandKind.CHARGE_FET: jk02.REG_CHARGE_FET,
    CommandKind.DISCHARGE_FET: jk02.REG_DISCHARGE_FET,
    CommandKind.BALANCE: jk02.REG_BALANCER,
}
_SETTING_KEY = {
    CommandKind.CHARGE_FET: "charge_switch",
    CommandKind.DISCHARGE_FET: "discharge_switch",
    CommandKind.BALANCE: "balancer_switch",
}


class BleSession(Session):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        self.stream = stream_link(ctx)
        options = ctx.options if isinstance(ctx.options, JkOptions) else JkOptions()
        self.forced_slots = options.layout_slots
        self.slots: int | None = self.forced_slots
        self.identity = Sample()
        self.settings: dict[str, int] | None = None

    @property
    def capabilities(self) -> frozenset[Capability]:
        caps = self.ctx.variant.capabilities
        if self.slots == 24:  # the 24-slot record has no heating byte
            caps = caps - {Capability.HEATING}
        return caps

    # -- records ----------------------------------------------------------------------------

    def _absorb(self, record: bytes) -> Sample | None:
        """Keep settings/device info; return a decoded cell-info record."""
        kind = jk02.check_record(record)
        if kind == jk02.TYPE_SETTINGS:
            self.settings = jk02.settings(record)
        elif kind == jk02.TYPE_DEVICE:
            self.identity = jk02.parse_device_info(record)
            if self.forced_slots is None and self.identity.firmware_version:
                self.slots = jk02.firmware_slots(self.identity.firmware_version)
        else:
            return jk02.cell_info_sample(record, self.slots or jk02.guess_slots(record))
        return None

    async def _send(self, register: int, value: int | None = None) -> None:
        await self.stream.write(jk02.build_command(register, value))

    async def _wait_for(self, kind: int) -> bytes:
        """Read records until one of ``kind`` arrives; others are absorbed on the way. One
        deadline for all: a BMS streaming other records must not keep us here forever."""
        deadline = time.monotonic() + self.ctx.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout(f"JK BLE: no record of type {kind} within {self.ctx.timeout:g} s")
            record = await self.stream.read_frame(jk02.ble_framer, remaining)
            if jk02.check_record(record) == kind:
                return record
            self._absorb(record)

    async def _drain(self) -> Sample | None:
        """The newest cell-info record among those already received, if any."""
        newest: Sample | None = None
        for _ in range(DRAIN_MAX_RECORDS):
            try:
                record = await self.stream.read_frame(jk02.ble_framer, DRAIN_TIMEOUT)
            except LinkTimeout:
                return newest
            try:
                cells = self._absorb(record)
            except FrameError as exc:
                self.log.debug("JK BLE: dropped record: %s", exc)
                continue
            if cells is not None:
                newest = cells
        return newest

    async def _request_cells(self) -> Sample:
        async def attempt() -> Sample:
            async with self.stream.exclusive():
                await self._send(jk02.REQ_CELL_INFO)
                record = await self._wait_for(jk02.TYPE_CELLS)
            sample = self._absorb(record)
            assert sample is not None
            return sample

        return await with_retries(self.ctx, "JK BLE cell info", attempt)

    def _with_static(self, cells: Sample) -> Sample:
        sample = self.identity.merge(cells)
        if self.settings is not None:
            s = self.settings
            sample.balance_fet = bool(s["balancer_switch"])
            sample.bms_charge_current_limit = s["max_charge_ma"] / 1000
            sample.bms_discharge_current_limit = s["max_discharge_ma"] / 1000
        return sample

    # -- session API ------------------------------------------------------------------------

    async def connect(self) -> Sample:
        async def device_info() -> bytes:
            async with self.stream.exclusive():
                self.stream.discard_input()
                await self._send(jk02.REQ_DEVICE_INFO)
                return await self._wait_for(jk02.TYPE_DEVICE)

        record = await with_retries(self.ctx, "JK BLE device info", device_info)
        self._absorb(record)
        model = self.identity.model or ""
        if not model.startswith(("JK-", "JK_")):
            raise NotMyBMS(f"JK BLE: device reports vendor id {model!r}, not a JK BMS")
        return self._with_static(await self._request_cells())

    async def read(self) -> Sample:
        async with self.stream.exclusive():
            cells = await self._drain()
        if cells is None:
            cells = await self._request_cells()
        return self._with_static(cells)

    async def read_slow(self) -> Sample:
        """Settings change only when someone uses the app: refresh them (0x96 answers with
        settings first)."""
        return self._with_static(await self._request_cells())

    async def execute(self, command: Command) -> None:
        register = _WRITE_REGISTER.get(command.kind)
        if register is None:
            raise UnsupportedCommand(
                f"JK BLE: {command.kind.value} is not supported (the only documented SoC "
                "'reset' is an OVP trick that needs a full cell; see docs/bms/jk.md)"
            )
        value = 1 if command.value else 0

        async def attempt() -> None:
            async with self.stream.exclusive():
                await self._send(register, value)
                # The BMS does not acknowledge writes: read the settings back to confirm.
                await self._send(jk02.REQ_CELL_INFO)
                record = await self._wait_for(jk02.TYPE_SETTINGS)
            self._absorb(record)
            assert self.settings is not None
            if self.settings[_SETTING_KEY[command.kind]] != value:
                raise FrameError(
                    f"JK BLE: {command.kind.value} := {value} not applied by the BMS"
                )

        await with_retries(self.ctx, f"JK BLE write {command.kind.value}", attempt)
