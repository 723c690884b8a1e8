"""JK PB inverter BMS end to end: trigger protocol, echoing adapters, a daisy chain of three
packs on one simulated bus, and the host showing them as three batteries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jk_helpers import Clock, session, sim_stream

from bmshost.errors import ConfigError, FrameError, LinkTimeout, UnsupportedCommand
from bmshost.model import Command, CommandKind
from bmshost_jk import pb_codec
from bmshost_jk.pb_sim import PbSimulator


@pytest.mark.parametrize("echo", [False, True])
async def test_daisy_chain_of_three_on_one_link(echo: bool) -> None:
    clock = Clock()
    sim = PbSimulator(cells=16, addresses="1,2,3", echo=echo, current=-8.0)
    link = sim_stream(sim, clock)
    await link.open()
    sessions = [session(link, "pb", address=a, pb_command_gap=0.0) for a in (1, 2, 3)]
    samples = [await s.connect() for s in sessions]
    for a, sample in zip((1, 2, 3), samples, strict=True):
        truth = sim.state(a)
        assert sample.address == a
        assert sample.serial_number == f"SIMPB{a:02d}" and sample.model == "JK_PB2A16S20P"
        assert sample.soc == pytest.approx(truth.soc, abs=0.51)
        assert sample.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.0011)
        assert sample.current == pytest.approx(-8.0)
        assert sample.bms_charge_current_limit == 100.0 and sample.balance_fet is True
        assert sample.heating is False and sample.soh == 100.0
    assert len({s.soc for s in samples}) == 3  # three different packs, not one read thrice
    clock.t += 60
    again = [await s.read() for s in sessions]
    assert [x.address for x in again] == [1, 2, 3]
    # the settings, about and status triggers went to each address in the reference order
    first = sim.requests[:3]
    assert first == [(1, pb_codec.TRIGGER_SETTINGS), (1, pb_codec.TRIGGER_ABOUT),
                     (1, pb_codec.TRIGGER_STATUS)]
    assert all(a != 0 for a, _ in sim.requests)


async def test_address_zero_is_refused_before_anything_is_sent() -> None:
    sim = PbSimulator(addresses="1")
    link = sim_stream(sim)
    await link.open()
    with pytest.raises(ConfigError, match="bus master"):
        session(link, "pb", address=0)
    with pytest.raises(ValueError, match="bus master"):
        pb_codec.build_trigger(0, pb_codec.TRIGGER_STATUS)
    with pytest.raises(ValueError):
        PbSimulator(addresses="0,1")
    assert sim.requests == []


async def test_missing_pack_times_out_and_others_keep_working() -> None:
    sim = PbSimulator(addresses="1,3")
    link = sim_stream(sim)
    await link.open()
    missing = session(link, "pb", address=2, pb_command_gap=0.0, timeout=0.02, retries=0)
    with pytest.raises(LinkTimeout):
        await missing.connect()
    present = session(link, "pb", address=3, pb_command_gap=0.0)
    assert (await present.connect()).address == 3


async def test_about_not_answered_is_tolerated() -> None:
    sim = PbSimulator(addresses="1", about=False)
    link = sim_stream(sim)
    await link.open()
    s = session(link, "pb", address=1, pb_command_gap=0.0, timeout=0.02, retries=0)
    sample = await s.connect()
    assert sample.model is None and sample.cell_count == 16 and sample.address == 1


async def test_reply_from_another_address_is_rejected() -> None:
    sim = PbSimulator(addresses="2")
    record = sim.feed(pb_codec.build_trigger(2, pb_codec.TRIGGER_STATUS))
    frame, _ = pb_codec.framer(record)
    assert frame is not None
    with pytest.raises(FrameError, match="address 2"):
        pb_codec.check_reply(frame, 1, pb_codec.TRIGGER_STATUS)
    with pytest.raises(FrameError, match="does not answer"):
        # an acknowledge for the right trigger around the wrong record type
        settings = sim.feed(pb_codec.build_trigger(2, pb_codec.TRIGGER_SETTINGS))[:300]
        bad = settings + pb_codec.build_ack(2, pb_codec.TRIGGER_STATUS)
        pb_codec.check_reply(bad, 2, pb_codec.TRIGGER_STATUS)


async def test_stale_bytes_before_the_reply_are_skipped() -> None:
    sim = PbSimulator(addresses="1")
    reply = sim.feed(pb_codec.build_trigger(1, pb_codec.TRIGGER_STATUS))
    stale = b"\x00\x55\xaa\x01" + pb_codec.build_trigger(1, pb_codec.TRIGGER_STATUS)
    frame, used = pb_codec.framer(stale + reply)
    assert frame is not None and used == len(stale) + len(reply)
    assert pb_codec.check_reply(frame, 1, pb_codec.TRIGGER_STATUS)[:4] == b"\x55\xaa\xeb\x90"


async def test_command_gap_is_kept_between_sessions_on_one_bus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    sim = PbSimulator(addresses="1,2")
    link = sim_stream(sim, clock)
    await link.open()
    a = session(link, "pb", address=1, pb_command_gap=0.05)
    b = session(link, "pb", address=2, pb_command_gap=0.05)
    a.clock = clock  # type: ignore[attr-defined]
    b.clock = clock  # type: ignore[attr-defined]
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("bmshost_jk.pb_session.asyncio.sleep", fake_sleep)
    await a.read()
    await b.read()  # same bus, no time passed: must wait the whole gap
    assert slept == [pytest.approx(0.05)]
    clock.t += 1.0
    await a.read()  # the gap has long passed: no wait
    assert len(slept) == 1


async def test_pb_has_no_writes() -> None:
    link = sim_stream(PbSimulator())
    await link.open()
    with pytest.raises(UnsupportedCommand):
        await session(link, "pb", pb_command_gap=0.0).execute(Command(CommandKind.CHARGE_FET, False))


async def test_host_shows_a_daisy_chain_as_three_batteries(tmp_path: Path) -> None:
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host
    from bmshost.testing import RecordingSink

    port = "sim:jk?variant=pb&addresses=1,2,3&cells=16"
    config, plugins = prepare_dict({
        "host": {"poll_interval": 1.0, "request_timeout": 0.2, "state_dir": str(tmp_path)},
        "batteries": [
            {"driver": "jk", "variant": "pb", "port": port, "address": a, "name": f"pack{a}",
             "pb_command_gap": 0.0}
            for a in (1, 2, 3)
        ],
    })
    sink = RecordingSink()
    clock = Clock()
    host = Host(config, plugins, extra_sinks=[sink], clock=clock)
    host.build()
    assert len(host.links) == 1 and len(host.batteries) == 3
    for _ in range(2):
        for battery in host.batteries:
            await battery.cycle()
        clock.t += 1.0
    serials = set()
    for a in (1, 2, 3):
        update = sink.last(f"pack{a}")
        assert update.online and update.sample is not None and update.sample.address == a
        serials.add(update.sample.serial_number)
    assert serials == {"SIMPB01", "SIMPB02", "SIMPB03"}


def test_bad_option_values_are_config_errors() -> None:
    from bmshost.cli.common import prepare_dict

    with pytest.raises(ConfigError, match="pb_command_gap"):
        prepare_dict({"batteries": [{"driver": "jk", "variant": "pb", "port": "sim:jk?variant=pb",
                                     "pb_command_gap": -1.0}]})
    with pytest.raises(ConfigError, match="layout"):
        prepare_dict({"batteries": [{"driver": "jk", "variant": "ble", "port": "sim:jk?variant=ble",
                                     "layout": "48s"}]})


async def test_daisy_chain_over_a_real_pseudo_terminal(pty_simulator) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("bmshost_transport_serial.links")
    from bmshost.url import parse_link_url
    from bmshost_transport_serial.links import open_link

    sim = PbSimulator(cells=16, addresses="1,2,3", echo=True)
    server = pty_simulator(sim)
    link = open_link(parse_link_url(server.path), {"baud": 115200})
    await link.open()
    try:
        sessions = [session(link, "pb", address=a, pb_command_gap=0.0, timeout=1.0)
                    for a in (1, 2, 3)]
        samples = [await s.connect() for s in sessions]
        samples = [await s.read() for s in sessions]
    finally:
        await link.close()
    assert [x.address for x in samples] == [1, 2, 3]
    assert [x.serial_number for x in samples] == ["SIMPB01", "SIMPB02", "SIMPB03"]
    assert all(x.cell_count == 16 for x in samples)
