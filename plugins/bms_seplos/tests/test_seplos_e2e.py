"""End to end per variant: the real session against its simulator over in-process links."""

from __future__ import annotations

from typing import Any

import pytest
from seplos_helpers import Clock, make_session, make_sim, sim_link, spec

from bmshost.errors import LinkTimeout, NotMyBMS, UnsupportedCommand
from bmshost.model import Command, CommandKind, Sample
from bmshost_seplos import modbus_v3 as mb
from bmshost_seplos.options import SeplosOptions
from bmshost_seplos.sim_ble import SeplosBleSimulator
from bmshost_seplos.sim_v2 import SeplosV2Simulator
from bmshost_seplos.sim_v3 import SeplosV3Simulator


async def _open(sim: Any, clock: Clock | None = None) -> Any:
    link = sim_link(sim, clock)
    await link.open()
    return link


def _assert_matches(sample: Sample, truth: Sample, alarms: bool = True) -> None:
    assert sample.voltage == pytest.approx(truth.voltage, abs=0.011)
    assert sample.current == pytest.approx(truth.current, abs=0.011)
    assert sample.soc == pytest.approx(truth.soc, abs=0.051)
    assert sample.soh == pytest.approx(truth.soh, abs=0.051)
    assert sample.remaining_ah == pytest.approx(truth.remaining_ah, abs=0.011)
    assert sample.capacity_ah == pytest.approx(truth.capacity_ah)
    assert sample.cycles == truth.cycles
    assert sample.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.0011)
    assert sample.temperatures == pytest.approx(truth.temperatures, abs=0.051)
    assert sample.mosfet_temperature == pytest.approx(truth.mosfet_temperature, abs=0.051)
    assert (sample.charge_fet, sample.discharge_fet) == (truth.charge_fet, truth.discharge_fet)
    assert sample.heating is truth.heating
    if truth.cell_balancing is not None:
        assert sample.cell_balancing == truth.cell_balancing
    if alarms and truth.alarms:
        assert sample.alarms is not None
        for name, level in truth.alarms.items():
            assert sample.alarms[name] == level, name


@pytest.mark.parametrize("variant", ["serial", "v3", "ble", "v3_ble"])
async def test_reads_follow_the_simulated_pack(variant: str) -> None:
    clock = Clock()
    sim = make_sim(variant, current=-50.0, soc=80.0)
    link = await _open(sim, clock)
    session = make_session(variant, link)
    first = await session.connect()
    _assert_matches(first, sim.state())
    assert first.current == pytest.approx(-50.0)
    clock.now += 3600  # one hour at 50 A out of 280 Ah
    later = await session.read()
    _assert_matches(later, sim.state())
    assert later.soc == pytest.approx(80.0 - 50 / 280 * 100, abs=0.1)
    with pytest.raises(UnsupportedCommand):
        await session.execute(Command(CommandKind.CHARGE_FET, False))


async def test_v2_identity_alarms_and_balancing() -> None:
    clock = Clock()
    sim = make_sim("serial", current=100.0, soc=97.0)
    assert isinstance(sim, SeplosV2Simulator)
    link = await _open(sim, clock)
    session = make_session("serial", link)
    sample = await session.connect()
    assert sample.model == "1101-SP15" and sample.firmware_version == "1.6"
    assert any(sample.cell_balancing or [])  # charging near full: top cells bleed
    clock.now += 3600  # runs into the cell over-voltage protection
    tripped = await session.read()
    assert tripped.charge_fet is False and tripped.current == 0.0
    assert tripped.alarms is not None and tripped.alarms["high_cell_voltage"] == 2
    _assert_matches(tripped, sim.state())


async def test_v2_command_group_option() -> None:
    sim = make_sim("serial", address=3)
    assert isinstance(sim, SeplosV2Simulator)
    link = await _open(sim)
    await make_session("serial", link, address=3).read()
    await make_session("serial", link, address=3, options=SeplosOptions(command_group=1)).read()
    assert sim.groups == [3, 3, 1, 1]


@pytest.mark.parametrize("variant", ["serial", "v3"])
async def test_daisy_chain_of_three_packs_on_one_link(variant: str) -> None:
    sim = make_sim(variant, addresses="1,2,5", cells=16)
    assert isinstance(sim, SeplosV2Simulator | SeplosV3Simulator)
    sim.packs[2].soc = 20.0
    sim.packs[5].current = 30.0
    link = await _open(sim)
    sessions = {a: make_session(variant, link, address=a) for a in (1, 2, 5)}
    truths = sim.states()
    for address, session in sessions.items():
        sample = await session.connect()
        assert sample.address == address
        _assert_matches(sample, truths[address])
    assert (await sessions[2].read()).soc == 20.0
    assert (await sessions[5].read()).current == 30.0


async def test_v3_limits_identity_and_cell_count() -> None:
    sim = make_sim("v3", address=1, cells=15)
    assert isinstance(sim, SeplosV3Simulator)
    link = await _open(sim)
    sample = await make_session("v3", link, address=1).connect()
    assert sample.bms_charge_current_limit == 140.0
    assert sample.bms_discharge_current_limit == 200.0
    assert sample.serial_number == "SIMBMS0001" and sample.firmware_version == "1.5"
    assert sample.model == "SP16S020"
    assert len(sample.cell_voltages or []) == 15 and len(sample.cell_balancing or []) == 15


async def test_v3_rejects_a_device_that_is_not_seplos() -> None:
    class Foreign(SeplosV3Simulator):
        def _answer(self, pack: Any, frame: bytes) -> bytes:
            reply = super()._answer(pack, frame)
            return mb.with_crc(reply[:-2].replace(b"XZH-", b"ABC-"))

    link = await _open(Foreign())
    with pytest.raises(NotMyBMS):
        await make_session("v3", link, retries=0).connect()


@pytest.mark.parametrize("variant", ["serial", "v3", "ble"])
async def test_silent_bms_times_out(variant: str) -> None:
    sim = make_sim(variant)
    sim.silent = True
    link = await _open(sim)
    with pytest.raises(LinkTimeout):
        await make_session(variant, link, timeout=0.02, retries=0).read()


async def test_v2_pack_not_on_the_bus_times_out() -> None:
    link = await _open(make_sim("serial", address=1))
    with pytest.raises(LinkTimeout):
        await make_session("serial", link, address=2, timeout=0.02, retries=0).read()


async def test_ble_switches_and_heater() -> None:
    sim = make_sim("ble")
    assert isinstance(sim, SeplosBleSimulator)
    sim.pack.discharge_fet = False
    sim.pack.heater = True
    link = await _open(sim)
    sample = await make_session("ble", link).connect()
    assert sample.discharge_fet is False and sample.charge_fet is True and sample.heating is True
    assert sample.model == "1101-SP15"


@pytest.mark.parametrize("variant", ["serial", "v3"])
async def test_over_a_real_pty_with_the_serial_transport(pty_simulator: Any, variant: str) -> None:
    serial_links = pytest.importorskip("bmshost_transport_serial.links")
    from bmshost.url import parse_link_url

    sim = make_sim(variant, addresses="0,1")
    server = pty_simulator(sim)
    link = serial_links.open_link(parse_link_url(server.path), {"baud": 19200})
    await link.open()
    try:
        for address in (0, 1):
            sample = await make_session(variant, link, address=address, timeout=1.0).connect()
            assert sample.address == address and len(sample.cell_voltages or []) == 16
    finally:
        await link.close()


def test_every_variant_has_session_simulator_and_decoder() -> None:
    from bmshost.lazy import resolve

    for v in spec().variants:
        for ref in (v.session, v.simulator, v.decoder):
            assert callable(resolve(ref)), (v.name, ref)


@pytest.mark.parametrize("variant", ["serial", "ble", "v3"])
@pytest.mark.parametrize("cells", [4, 8, 15])
async def test_any_cell_count_decodes(variant: str, cells: int) -> None:
    sim = make_sim(variant, cells=cells, current=5.0)
    link = await _open(sim)
    sample = await make_session(variant, link).connect()
    assert len(sample.cell_voltages or []) == cells
    _assert_matches(sample, sim.state())


async def test_v2_error_reply_is_reported_by_name() -> None:
    from bmshost_seplos import ascii_v2

    class Refusing(SeplosV2Simulator):
        def _answer(self, pack: Any, address: int, cid1: int, cid2: int, info: bytes) -> bytes:
            return ascii_v2.build_frame(address, 0x04)

    link = await _open(Refusing())
    from bmshost.errors import FrameError

    with pytest.raises(FrameError, match="CID2 invalid"):
        await make_session("serial", link, retries=0).read()


@pytest.mark.parametrize("variant", ["ble", "v3_ble"])
async def test_ble_notifications_in_20_byte_pieces_are_reassembled(variant: str) -> None:
    from seplos_helpers import ChunkedSimLink

    from bmshost.url import LinkUrl

    sim = make_sim(variant, current=-7.0)
    link = ChunkedSimLink(LinkUrl("sim", "seplos", {}, "sim:seplos"), sim, Clock())
    await link.open()
    sample = await make_session(variant, link).connect()
    _assert_matches(sample, sim.state())
