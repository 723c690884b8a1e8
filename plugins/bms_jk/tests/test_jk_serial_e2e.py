"""JK serial (0x4E57) end to end: the real session against the simulator, in process and over a
real pseudo-terminal with the serial transport, and in a running host."""

from __future__ import annotations

from pathlib import Path

import pytest
from jk_helpers import Clock, session, sim_stream

from bmshost.errors import FrameError, LinkTimeout, UnsupportedCommand
from bmshost.link import StreamLink
from bmshost.model import Command, CommandKind, Sample
from bmshost.url import parse_link_url
from bmshost_jk import serial_codec
from bmshost_jk.serial_sim import SerialSimulator


def assert_matches(sample: Sample, truth: Sample) -> None:
    assert sample.voltage == pytest.approx(truth.voltage, abs=0.011)
    assert sample.current == pytest.approx(truth.current, abs=0.011)
    assert sample.soc == pytest.approx(truth.soc, abs=0.51)
    assert sample.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.0011)
    assert sample.temperatures == pytest.approx(truth.temperatures, abs=0.51)
    assert sample.charge_fet is truth.charge_fet
    assert sample.discharge_fet is truth.discharge_fet


@pytest.mark.parametrize("cells", [4, 16, 24])
async def test_reads_follow_the_simulated_pack(cells: int) -> None:
    clock = Clock()
    sim = SerialSimulator(cells=cells, current=-40.0, soc=60.0)
    link = sim_stream(sim, clock)
    await link.open()
    s = session(link, "serial")
    first = await s.connect()
    assert_matches(first, sim.state())
    assert first.serial_number == sim.pack.serial_number and first.firmware_version
    clock.t += 600  # ten minutes of 40 A discharge: 40 A x 1/6 h = 6.7 Ah of 280 Ah = 2.4 %
    later = await s.read()
    assert_matches(later, sim.state())
    assert later.soc < first.soc and later.current == pytest.approx(-40.0)
    assert later.remaining_ah == pytest.approx(280 * later.soc / 100)
    assert later.bms_charge_current_limit == 100.0 and later.bms_discharge_current_limit == 150.0


async def test_protection_trips_show_as_fet_off_and_alarm() -> None:
    clock = Clock()
    sim = SerialSimulator(cells=8, current=50.0, soc=99.0)
    link = sim_stream(sim, clock)
    await link.open()
    s = session(link, "serial")
    sample = await s.connect()
    assert sample.charge_fet and sample.alarms and sample.alarms["high_cell_voltage"] == 0
    sim.pack.offsets_mv[2] = 400.0  # one cell runs away
    clock.t += 1
    sample = await s.read()
    assert sample.charge_fet is False and sample.discharge_fet is True
    assert sample.alarms is not None and sample.alarms["high_cell_voltage"] == 2
    assert sample.current == 0.0  # the open charge FET stops the current


async def test_silent_bms_times_out_and_corrupt_reply_is_retried() -> None:
    sim = SerialSimulator(cells=4)
    link = sim_stream(sim)
    await link.open()
    s = session(link, "serial", timeout=0.02, retries=1)
    sim.silent = True
    with pytest.raises(LinkTimeout):
        await s.read()
    sim.silent = False

    # First reply corrupted, the retry gets a good one.
    original = sim.reply
    calls = {"n": 0}

    def flaky() -> bytes:
        calls["n"] += 1
        good = original()
        return good[:-1] + bytes((good[-1] ^ 0xFF,)) if calls["n"] == 1 else good

    sim.reply = flaky  # type: ignore[method-assign]
    sample = await s.read()
    assert calls["n"] == 2 and sample.cell_count == 4

    sim.reply = lambda: original()[:-1] + b"\x00"  # type: ignore[method-assign]
    with pytest.raises(FrameError):
        await s.read()


async def test_junk_and_split_frames_are_reassembled() -> None:
    sim = SerialSimulator(cells=16)
    frame = sim.reply()
    buf = b"\x00\x4e\xff" + frame[:50]
    got, used = serial_codec.framer(buf)
    assert got is None and buf[used:].startswith(b"\x4e\x57")
    got, used = serial_codec.framer(buf[used:] + frame[50:])
    assert got == frame


async def test_no_writes_over_serial() -> None:
    link = sim_stream(SerialSimulator(cells=4))
    await link.open()
    s = session(link, "serial")
    with pytest.raises(UnsupportedCommand):
        await s.execute(Command(CommandKind.CHARGE_FET, False))


async def test_over_a_real_pseudo_terminal(pty_simulator) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("bmshost_transport_serial.links")
    from bmshost_transport_serial.links import open_link

    sim = SerialSimulator(cells=16, current=12.5)
    server = pty_simulator(sim)
    link = open_link(parse_link_url(server.path), {"baud": 115200})
    assert isinstance(link, StreamLink)
    await link.open()
    try:
        s = session(link, "serial", timeout=1.0)
        sample = await s.connect()
        with server.lock:
            truth = sim.state()
        assert_matches(sample, truth)
        assert sim.requests == 1
    finally:
        await link.close()


async def test_host_runs_a_simulated_jk_serial(tmp_path: Path) -> None:
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host
    from bmshost.testing import RecordingSink

    config, plugins = prepare_dict({
        "host": {"poll_interval": 1.0, "request_timeout": 0.2, "state_dir": str(tmp_path)},
        "batteries": [{"driver": "jk", "variant": "serial", "port": "sim:jk?variant=serial&cells=8",
                       "name": "jk1"}],
    })
    sink = RecordingSink()
    clock = Clock()
    host = Host(config, plugins, extra_sinks=[sink], clock=clock)
    host.build()
    for _ in range(3):
        await host.batteries[0].cycle()
        clock.t += 1.0
    update = sink.last("jk1")
    assert update.online and update.sample is not None and update.sample.cell_count == 8
    assert update.limits is not None and update.limits.cvl is not None
