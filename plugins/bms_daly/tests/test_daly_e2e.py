"""End to end per variant: the real session against its simulator over in-process links."""

from __future__ import annotations

import datetime as dt

import pytest
from daly_helpers import Clock, make_session, make_sim, sim_link, spec

from bmshost.capabilities import Capability
from bmshost.errors import LinkTimeout, UnsupportedCommand
from bmshost.link import CanFrame
from bmshost.model import Command, CommandKind
from bmshost_daly import a5
from bmshost_daly.options import DalyOptions
from bmshost_daly.sim_a5 import DalyA5Simulator
from bmshost_daly.sim_can import DalyCanSimulator
from bmshost_daly.sim_d2 import DalyD2Simulator


async def _open(sim, clock=None):  # type: ignore[no-untyped-def]
    link = sim_link(sim, clock)
    await link.open()
    return link


def _assert_matches(sample, truth) -> None:  # type: ignore[no-untyped-def]
    assert sample.voltage == pytest.approx(truth.voltage, abs=0.11)
    assert sample.current == pytest.approx(truth.current, abs=0.11)
    assert sample.soc == pytest.approx(truth.soc, abs=0.11)
    assert sample.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.0011)
    assert sample.temperatures == pytest.approx(truth.temperatures, abs=1.0)
    assert sample.charge_fet is truth.charge_fet
    assert sample.discharge_fet is truth.discharge_fet


@pytest.mark.parametrize("variant", ["serial", "ble_a5"])
@pytest.mark.parametrize("all_frames", [0, 1])
async def test_a5_reads_match_the_simulated_pack(variant: str, all_frames: int) -> None:
    clock = Clock()
    sim = make_sim(variant, cells=16, current=-20.0, all_cell_frames=all_frames, ble=1)
    assert isinstance(sim, DalyA5Simulator)
    link = await _open(sim, clock)
    session = make_session(variant, link)
    first = await session.connect()
    assert first.capacity_ah == 100.0
    assert first.serial_number == "DALYSIM00001-01"
    assert first.production_date == "2024-05-17"
    _assert_matches(first, sim.state())
    assert first.current == pytest.approx(-20.0)  # discharging, Victron sign
    clock.now += 1800  # half an hour at 20 A = 10 Ah = 10 % SoC
    later = await session.read()
    _assert_matches(later, sim.state())
    assert later.soc == pytest.approx(50.0, abs=0.2)
    slow = await session.read_slow()
    assert slow.cycles == 7
    assert slow.alarms is None and slow.extra is not None and "balance_bits" in slow.extra


async def test_a5_current_sign_option_flips_the_current() -> None:
    sim = make_sim("serial", current=15.0)
    link = await _open(sim)
    normal = await make_session("serial", link).connect()
    flipped = await make_session(
        "serial", link, options=DalyOptions(current_sign="charge_above_offset")
    ).connect()
    assert normal.current == pytest.approx(15.0)
    assert flipped.current == pytest.approx(-15.0)


async def test_a5_writes_switch_fets_and_set_soc() -> None:
    sim = make_sim("serial", current=10.0)
    assert isinstance(sim, DalyA5Simulator)
    link = await _open(sim)
    when = dt.datetime(2024, 5, 17, 12, 30)
    session = make_session("serial", link, now=lambda: when)
    await session.connect()
    await session.execute(Command(CommandKind.CHARGE_FET, False))
    sample = await session.read()
    assert sample.charge_fet is False and sample.current == 0.0  # the open FET stops charging
    await session.execute(Command(CommandKind.CHARGE_FET, True))
    await session.execute(Command(CommandKind.DISCHARGE_FET, False))
    sample = await session.read()
    assert sample.charge_fet is True and sample.discharge_fet is False
    await session.execute(Command(CommandKind.SOC_RESET, 100.0))
    assert (await session.read()).soc == 100.0
    assert a5.build_set_soc(0x40, 100, when) in sim.requests
    with pytest.raises(UnsupportedCommand):
        await session.execute(Command(CommandKind.BALANCE, False))
    with pytest.raises(UnsupportedCommand):
        await session.execute(Command(CommandKind.SOC_RESET, 120.0))


async def test_a5_protection_trips_and_refuses_to_close_the_fet() -> None:
    clock = Clock()
    sim = make_sim("serial", soc=99.0, current=50.0, capacity=10.0)
    assert isinstance(sim, DalyA5Simulator)
    link = await _open(sim, clock)
    session = make_session("serial", link)
    await session.connect()
    clock.now += 600
    sample = await session.read()
    assert sample.charge_fet is False
    assert sample.alarms is not None and sample.alarms["high_cell_voltage"] == 2
    from bmshost.errors import FrameError

    with pytest.raises(FrameError, match="refused"):
        await session.execute(Command(CommandKind.CHARGE_FET, True))


async def test_a5_daisy_chain_of_three_boards_on_one_link() -> None:
    sim = make_sim("serial", addresses="1,2,3", cells=8)
    assert isinstance(sim, DalyA5Simulator)
    sim.boards[2].soc = 30.0
    sim.boards[3].cells = 4
    link = await _open(sim)
    sessions = {b: make_session("serial", link, address=b) for b in (1, 2, 3)}
    samples = {b: await s.connect() for b, s in sessions.items()}
    truths = sim.states()
    for b in (1, 2, 3):
        assert samples[b].address == b
        _assert_matches(samples[b], truths[b])
    assert samples[2].soc == 30.0 and len(samples[3].cell_voltages or []) == 4
    await sessions[2].execute(Command(CommandKind.DISCHARGE_FET, False))
    assert sim.boards[2].discharge_fet is False and sim.boards[1].discharge_fet is True


async def test_a5_silent_bms_times_out() -> None:
    sim = make_sim("serial")
    sim.silent = True
    link = await _open(sim)
    session = make_session("serial", link, timeout=0.02, retries=0)
    with pytest.raises(LinkTimeout):
        await session.connect()


async def test_a5_wrong_board_gets_no_answer() -> None:
    link = await _open(make_sim("serial", address=2))
    with pytest.raises(LinkTimeout):
        await make_session("serial", link, address=1, timeout=0.02, retries=0).connect()


async def test_ble_a5_falls_back_to_host_0x80() -> None:
    class Only80(DalyA5Simulator):
        def _board_for(self, host: int) -> int | None:
            return 1 if host == 0x80 else None

    link = await _open(Only80(cells=4))
    session = make_session("ble_a5", link, timeout=0.02, retries=0)
    assert len((await session.connect()).cell_voltages or []) == 4


async def test_d2_reads_match_the_simulated_pack() -> None:
    clock = Clock()
    sim = make_sim("ble", cells=16, current=12.0)
    assert isinstance(sim, DalyD2Simulator)
    sim.pack.soc = 95.0
    link = await _open(sim, clock)
    session = make_session("ble", link)
    sample = await session.connect()
    truth = sim.state()
    _assert_matches(sample, truth)
    assert sample.current == pytest.approx(12.0)
    assert sample.cell_balancing == truth.cell_balancing and any(sample.cell_balancing or [])
    assert sample.mosfet_temperature == 30.0
    assert sample.firmware_version == "T00K_321042_11"
    assert sample.hardware_version == "H2.0_103R_309F9F"
    assert Capability.MOSFET_TEMPERATURE in session.capabilities
    with pytest.raises(UnsupportedCommand):
        await session.execute(Command(CommandKind.CHARGE_FET, False))


async def test_d2_without_mosfet_sensor_narrows_capabilities() -> None:
    sim = make_sim("ble", cells=4, mosfet=0)
    link = await _open(sim)
    session = make_session("ble", link)
    sample = await session.connect()
    assert sample.mosfet_temperature is None
    assert Capability.MOSFET_TEMPERATURE not in session.capabilities


async def test_can_reads_writes_and_daisy_chain() -> None:
    clock = Clock()
    sim = make_sim("can", addresses="1,2", cells=16, current=-8.0)
    assert isinstance(sim, DalyCanSimulator)
    sim.boards[2].soc = 40.0
    link = await _open(sim, clock)
    s1 = make_session("can", link, address=1)
    s2 = make_session("can", link, address=2)
    a, b = await s1.connect(), await s2.connect()
    truths = sim.states()
    _assert_matches(a, truths[1])
    _assert_matches(b, truths[2])
    assert a.address == 1 and b.address == 2 and b.soc == 40.0
    assert a.capacity_ah == 100.0 and len(a.cell_voltages or []) == 16
    await s2.execute(Command(CommandKind.SOC_RESET, 55.5))
    assert (await s2.read()).soc == 55.5
    assert CanFrame(0x161E0280, bytes.fromhex("022b000000000000"), True) in sim.received
    with pytest.raises(UnsupportedCommand):
        await s1.execute(Command(CommandKind.CHARGE_FET, False))


async def test_can_silent_bus_times_out() -> None:
    sim = make_sim("can")
    sim.silent = True
    link = await _open(sim)
    with pytest.raises(LinkTimeout):
        await make_session("can", link, timeout=0.02, retries=0).connect()


def test_every_variant_has_session_simulator_and_decoder() -> None:
    from bmshost.lazy import resolve

    for v in spec().variants:
        for ref in (v.session, v.simulator, v.decoder):
            assert callable(resolve(ref)), (v.name, ref)


async def test_a5_over_a_real_pty_with_the_serial_transport(pty_simulator) -> None:  # type: ignore[no-untyped-def]
    serial_links = pytest.importorskip("bmshost_transport_serial.links")
    from bmshost.url import parse_link_url

    sim = DalyA5Simulator(addresses="1,2", cells=16, all_cell_frames=1)
    server = pty_simulator(sim)
    link = serial_links.open_link(parse_link_url(server.path), {"baud": 9600})
    await link.open()
    try:
        sessions = [make_session("serial", link, address=b, timeout=1.0) for b in (1, 2)]
        for board, session in zip((1, 2), sessions, strict=True):
            sample = await session.connect()
            assert sample.address == board and len(sample.cell_voltages or []) == 16
            assert sample.serial_number == f"DALYSIM{board:05d}-{board:02d}"
        await sessions[1].execute(Command(CommandKind.CHARGE_FET, False))
        with server.lock:
            assert sim.boards[2].charge_fet is False
    finally:
        await link.close()


async def test_a5_replays_a_capture_recorded_from_the_session() -> None:
    from bmshost.link import CaptureRecorder
    from bmshost.transports.replay import ReplayStreamLink
    from bmshost.url import LinkUrl

    sim = make_sim("serial", cells=8, current=-3.0)
    link = await _open(sim)
    link.recorder = CaptureRecorder()
    live = await make_session("serial", link).connect()
    capture = {"format": "bmshost-capture/1", "exchanges": link.recorder.exchanges}
    replay = ReplayStreamLink(LinkUrl("replay", "x", {}, "replay:x"), capture)
    await replay.open()
    replayed = await make_session("serial", replay).connect()
    assert replayed.to_json_dict() == live.to_json_dict()


async def test_can_over_the_python_can_virtual_bus() -> None:
    pytest.importorskip("can")
    hub_mod = pytest.importorskip("bmshost_transport_can.hub")
    link_mod = pytest.importorskip("bmshost_transport_can.link")
    simbus = pytest.importorskip("bmshost_transport_can.simbus")
    import itertools

    from bmshost.url import parse_link_url

    channel = f"bmshost-daly-{id(itertools)}"
    sim = DalyCanSimulator(addresses="1,2", cells=16, current=5.0)
    async with simbus.SimulatorOnBus(sim, channel, period=3600):
        url = parse_link_url(f"can://{channel}?interface=virtual")
        link = link_mod.open_can_link(url, {"bitrate": 250000}, hub=hub_mod.BusHub())
        await link.open()
        try:
            for board in (1, 2):
                session = make_session("can", link, address=board, timeout=1.0)
                sample = await session.connect()
                assert sample.address == board and len(sample.cell_voltages or []) == 16
                assert sample.current == pytest.approx(5.0)
            await make_session("can", link, address=2).execute(Command(CommandKind.SOC_RESET, 42.0))
            sample = await make_session("can", link, address=2, timeout=1.0).read()
            assert sample.soc == 42.0
        finally:
            await link.close()


async def test_a5_zero_cells_is_not_a_daly_after_three_reads() -> None:
    from bmshost.errors import NotMyBMS

    sim = make_sim("serial")
    assert isinstance(sim, DalyA5Simulator)
    sim.pack.cells = 0  # what a board answering without a configured pack reports
    link = await _open(sim)
    with pytest.raises(NotMyBMS):
        await make_session("serial", link).connect()
    status_requests = [r for r in sim.requests if r[2] == a5.STATUS]
    assert len(status_requests) == 3


@pytest.mark.parametrize("variant", ["serial", "can"])
async def test_fast_reads_repeat_capacity_and_cycles(variant: str) -> None:
    sim = make_sim(variant, cells=8)
    link = await _open(sim)
    session = make_session(variant, link)
    await session.connect()
    sample = await session.read()
    assert (sample.capacity_ah, sample.cycles) == (100.0, 7)
    sim.pack.cycles = 8  # type: ignore[attr-defined]
    assert (await session.read()).cycles == 7  # cycles are a slow value ...
    await session.read_slow()
    assert (await session.read()).cycles == 8  # ... refreshed by the slow poll


@pytest.mark.parametrize("variant", ["ble", "ble_a5"])
async def test_ble_notifications_in_20_byte_pieces_are_reassembled(variant: str) -> None:
    from daly_helpers import ChunkedSimLink

    from bmshost.url import LinkUrl

    sim = make_sim(variant, cells=16, current=3.0)
    link = ChunkedSimLink(LinkUrl("sim", "daly", {}, "sim:daly"), sim, Clock())
    await link.open()
    sample = await make_session(variant, link).connect()
    _assert_matches(sample, sim.state())
