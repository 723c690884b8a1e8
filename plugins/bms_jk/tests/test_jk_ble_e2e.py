"""JK BLE end to end: the session against the JK02 simulator through a link that delivers
20-byte notifications with injected AT lines, for 24- and 32-slot firmware and firmware 19."""

from __future__ import annotations

import pytest
from jk_helpers import ChunkedBleLink, Clock, session

from bmshost.capabilities import Capability
from bmshost.errors import FrameError, LinkTimeout, NotMyBMS, UnsupportedCommand
from bmshost.model import Command, CommandKind, Sample
from bmshost_jk import jk02
from bmshost_jk.jk02_sim import BleSimulator, cell_record


def assert_matches(sample: Sample, truth: Sample) -> None:
    assert sample.voltage == pytest.approx(truth.voltage, abs=0.002)
    assert sample.current == pytest.approx(truth.current, abs=0.002)
    assert sample.soc == pytest.approx(truth.soc, abs=0.51)
    assert sample.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.0011)
    assert sample.temperatures == pytest.approx(truth.temperatures, abs=0.051)
    assert sample.charge_fet is truth.charge_fet
    assert sample.discharge_fet is truth.discharge_fet
    assert sample.remaining_ah == pytest.approx(truth.remaining_ah, abs=0.002)


@pytest.mark.parametrize(
    ("firmware", "cells", "slots"),
    [("10.08", 16, 24), ("10.08", 24, 24), ("11.48", 8, 32), ("15.38", 32, 32), ("19.27", 16, 32)],
)
async def test_connect_and_read_over_chunked_notifications(firmware: str, cells: int,
                                                           slots: int) -> None:
    clock = Clock()
    sim = BleSimulator(cells=cells, firmware=firmware, current=-12.0, at_lines=2)
    link = ChunkedBleLink(sim, clock, mtu=20, at_every=7)
    await link.open()
    s = session(link, "ble")
    first = await s.connect()
    assert s.slots == slots  # type: ignore[attr-defined]
    assert first.model == "JK_B2A16S20P" and first.firmware_version == firmware
    assert first.serial_number == sim.pack.serial_number
    assert_matches(first, sim.state())
    assert first.bms_charge_current_limit == 100.0 and first.bms_discharge_current_limit == 150.0
    assert first.balance_fet is True
    assert (Capability.HEATING in s.capabilities) is (slots == 32)
    assert first.heating is (False if slots == 32 else None)
    assert any(n == b"AT\r\n" for n in link.written) is False  # AT lines come from the BMS only
    clock.t += 300
    sim.tick(300)
    later = await s.read()
    assert_matches(later, sim.state())
    assert later.soc <= first.soc


async def test_streamed_records_are_used_without_asking_again() -> None:
    clock = Clock()
    sim = BleSimulator(cells=16, firmware="11.48")
    link = ChunkedBleLink(sim, clock, stream_period=1.0, at_every=5)
    await link.open()
    s = session(link, "ble")
    await s.connect()
    writes = len(link.written)
    for _ in range(3):
        clock.t += 1.0
        sim.tick(1.0)
        sample = await s.read()
        assert_matches(sample, sim.state())
    assert len(link.written) == writes  # the stream fed every poll


async def test_a_bms_that_stopped_streaming_is_asked_again() -> None:
    clock = Clock()
    sim = BleSimulator(cells=4, firmware="11.48")
    link = ChunkedBleLink(sim, clock)  # never streams on its own
    await link.open()
    s = session(link, "ble", timeout=0.05)
    await s.connect()
    n = len(link.written)
    await s.read()
    assert link.written[n:] == [jk02.build_command(jk02.REQ_CELL_INFO)]


async def test_ready_message_and_padding_are_skipped() -> None:
    sim = BleSimulator(cells=16, firmware="19.27")
    out = sim.feed(jk02.build_command(jk02.REQ_DEVICE_INFO))
    assert out.endswith(jk02.READY_MESSAGE)
    padded = out[:300] + bytes(20) + jk02.AT_LINE + sim.feed(jk02.build_command(jk02.REQ_CELL_INFO))
    sample = jk02.decode_stream(padded)
    assert sample.model and sample.cell_count == 16


async def test_at_line_inside_a_record_is_removed() -> None:
    record = cell_record(BleSimulator(cells=16).pack, 32)
    for cut in (20, 40, 160, 280):
        stream = record[:cut] + jk02.AT_LINE + record[cut:]
        got, used = jk02.ble_framer(stream)
        assert got == record and used == len(stream)


async def test_corrupt_record_is_skipped_for_the_next_good_one() -> None:
    pack = BleSimulator(cells=16).pack
    bad = bytearray(cell_record(pack, 32))
    bad[50] ^= 0x55
    good = cell_record(pack, 32, counter=9)
    got, used = jk02.ble_framer(bytes(bad) + good)
    assert got == good and used == len(bad) + len(good)


@pytest.mark.parametrize(
    ("kind", "register", "attr"),
    [(CommandKind.CHARGE_FET, 0x1D, "charge_switch"),
     (CommandKind.DISCHARGE_FET, 0x1E, "discharge_switch"),
     (CommandKind.BALANCE, 0x1F, "balancer_switch")],
)
async def test_switch_writes(kind: CommandKind, register: int, attr: str) -> None:
    clock = Clock()
    sim = BleSimulator(cells=16, firmware="11.48", current=-5.0 if kind is CommandKind.DISCHARGE_FET else 5.0)
    link = ChunkedBleLink(sim, clock, at_every=9)
    await link.open()
    s = session(link, "ble")
    await s.connect()
    await s.execute(Command(kind, False, origin="test"))
    assert getattr(sim.pack, attr) is False and sim.writes[-1] == (register, 0)
    assert jk02.build_command(register, 0) in link.written
    sample = await s.read()
    if kind is CommandKind.CHARGE_FET:
        assert sample.charge_fet is False and sample.current == 0.0
    elif kind is CommandKind.DISCHARGE_FET:
        assert sample.discharge_fet is False and sample.current == 0.0
    else:
        assert sample.balance_fet is False
    await s.execute(Command(kind, True, origin="test"))
    assert getattr(sim.pack, attr) is True


async def test_write_not_applied_is_reported() -> None:
    clock = Clock()
    sim = BleSimulator(cells=16)
    link = ChunkedBleLink(sim, clock)
    await link.open()
    s = session(link, "ble", retries=0)
    await s.connect()
    sim._handle = (lambda orig: lambda r, v: b"" if v is not None else orig(r, v))(sim._handle)  # type: ignore[method-assign]
    with pytest.raises(FrameError, match="not applied"):
        await s.execute(Command(CommandKind.CHARGE_FET, False))


async def test_soc_reset_is_unsupported_and_foreign_device_refused() -> None:
    clock = Clock()
    link = ChunkedBleLink(BleSimulator(cells=4), clock)
    await link.open()
    s = session(link, "ble")
    await s.connect()
    with pytest.raises(UnsupportedCommand):
        await s.execute(Command(CommandKind.SOC_RESET, 100.0))
    other = ChunkedBleLink(BleSimulator(cells=4, model="XY-OTHER"), clock)
    await other.open()
    with pytest.raises(NotMyBMS):
        await session(other, "ble").connect()


async def test_silent_bms_times_out() -> None:
    clock = Clock()
    sim = BleSimulator(cells=4)
    link = ChunkedBleLink(sim, clock)
    await link.open()
    sim.silent = True
    with pytest.raises(LinkTimeout):
        await session(link, "ble", timeout=0.02, retries=1).connect()


async def test_forced_layout_overrides_the_firmware_guess() -> None:
    clock = Clock()
    sim = BleSimulator(cells=16, firmware="10.08")
    link = ChunkedBleLink(sim, clock)
    await link.open()
    s = session(link, "ble", layout="24s")
    sample = await s.connect()
    assert s.slots == 24 and sample.cell_count == 16  # type: ignore[attr-defined]
