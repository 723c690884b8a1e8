"""JBD CAN: the broadcast codec (spec layouts; no captures exist), fuzzing, and the session
against the simulator in-process and over python-can's virtual bus through the CAN transport."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.driver import SessionContext
from bmshost.errors import FrameError, LinkTimeout
from bmshost.link import CanFrame
from bmshost.plugins import load_plugins
from bmshost.testing import make_sim_link
from bmshost.url import parse_link_url
from bmshost_jbd import can_codec
from bmshost_jbd.can_session import JbdCanSession
from bmshost_jbd.can_sim import JbdCanSimulator

_channels = itertools.count()


def f(ident: int, data: bytes) -> CanFrame:
    return CanFrame(ident, data, False)


def _variant() -> Any:
    spec = load_plugins().registries.drivers.get("jbd")
    assert spec is not None
    return spec.variant("can")


def session_for(link: Any, timeout: float = 0.3) -> JbdCanSession:
    return JbdCanSession(
        SessionContext(link=link, variant=_variant(), options=None, timeout=timeout, retries=0)
    )


def test_measurements_frame() -> None:
    # 53.12 V, -12.3 A (discharging), 21.5 °C, 42 cycles
    s = can_codec.decode_frame(f(0x356, struct.pack("<HhhH", 5312, -123, 215, 42)))
    assert (s.voltage, s.current, s.temperatures, s.cycles) == (53.12, -12.3, [21.5], 42)


def test_limits_and_soc_frames() -> None:
    s = can_codec.decode_frame(f(0x351, struct.pack("<HHHH", 568, 1500, 2000, 448)))
    assert (s.bms_charge_voltage_limit, s.bms_charge_current_limit) == (56.8, 150.0)
    assert (s.bms_discharge_current_limit, s.bms_discharge_voltage_limit) == (200.0, 44.8)
    s = can_codec.decode_frame(f(0x355, struct.pack("<HHH", 61, 98, 6095)))
    assert (s.soc, s.soh) == (60.95, 98.0)  # the 0.01 % value wins
    s = can_codec.decode_frame(f(0x355, struct.pack("<HH", 61, 98)))
    assert s.soc == 61.0


def test_alarm_and_warning_bits() -> None:
    alarm = bytes([0x04, 0x00, 0x40, 0x00])  # cell OV (byte0 b2), internal fault (byte2 b6)
    warning = bytes([0x00, 0x01, 0x00, 0x01])  # low temperature, cell imbalance
    s = can_codec.decode_frame(f(0x35A, alarm + warning))
    assert s.alarms is not None
    assert s.alarms["high_cell_voltage"] == 2 and s.alarms["internal_failure"] == 2
    assert s.alarms["low_temperature"] == 1 and s.alarms["cell_imbalance"] == 1
    assert s.alarms["low_cell_voltage"] == 0


def test_extremes_capacity_and_strings() -> None:
    frames = {
        0x355: f(0x355, struct.pack("<HHH", 50, 100, 5000)),
        0x356: f(0x356, struct.pack("<HhhH", 5320, 0, 200, 1)),
        0x373: f(0x373, struct.pack("<HHHH", 3320, 3330, 293, 296)),
        0x35F: f(0x35F, struct.pack("<HHHH", 1, 0x0C04, 0, 0x21)),  # capacity 0 (UP16S015)
        0x379: f(0x379, struct.pack("<H", 300) + bytes(6)),
        0x370: f(0x370, b"UP16S015"),
        0x371: f(0x371, b"-16S\0\0\0\0"),
        0x380: f(0x380, b"JBD87654"),
        0x381: f(0x381, b"321\0\0\0\0\0"),
    }
    s = can_codec.combine(frames)
    assert s.capacity_ah == 300.0 and s.model == "UP16S015-16S" and s.serial_number == "JBD87654321"
    assert (s.cell_voltage_min, s.cell_voltage_max) == (3.32, 3.33)
    assert s.extra is not None and s.extra["max_temperature"] == 22.9
    assert s.series_cells is None  # the codec does not guess; the session latches a count
    assert s.cell_voltages is None  # the protocol has no single cells: none are made up
    assert s.power == 0.0


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (f(0x356, b"\x01\x02"), "need 8"),
        (CanFrame(0x356, bytes(8), True), "11-bit"),
        (f(0x123, bytes(8)), "not a JBD CAN frame"),
        (f(0x373, struct.pack("<HHHH", 3400, 3300, 290, 291)), "minimum above maximum"),
        (f(0x355, struct.pack("<HH", 250, 100)), "out of range"),
    ],
)
def test_bad_frames(frame: CanFrame, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        can_codec.decode_frame(frame)


def test_decode_for_the_cli() -> None:
    sim = JbdCanSimulator(cells=16, soc=40)
    lines = [fr.to_candump() for fr in sim.broadcast()]
    sample = can_codec.decode([CanFrame.from_candump(x) for x in lines])
    assert sample.soc == 40.0 and sample.capacity_ah == 100.0
    with pytest.raises(FrameError):
        can_codec.decode([])
    with pytest.raises(FrameError):
        can_codec.decode([b"\xdd\x03"])


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([*sorted(can_codec.IDS), 0x100, 0x7FF]), st.binary(max_size=8), st.booleans()
)
def test_codec_fuzz_random_frames(ident: int, data: bytes, extended: bool) -> None:
    try:
        can_codec.decode_frame(CanFrame(ident, data, extended))
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 18), st.integers(0, 7), st.integers(0, 255))
def test_codec_fuzz_mutated_broadcasts(index: int, pos: int, value: int) -> None:
    frames = list(JbdCanSimulator().broadcast())
    target = frames[index]
    data = bytearray(target.data)
    data[pos % len(data)] = value
    frames[index] = CanFrame(target.arbitration_id, bytes(data), False)
    try:
        can_codec.decode(frames)
    except FrameError:
        pass


async def test_session_over_sim_can_link_equals_state() -> None:
    sim = JbdCanSimulator(cells=16, packs=2, soc=55.5, current=-30)
    link = make_sim_link(sim, url="sim:jbd?variant=can", clock=lambda: 0.0)
    await link.open()
    session = session_for(link)
    sample = await session.read()
    truth = sim.state()
    # the session adds the latched series count (the simulator's cells are all equal: confident)
    assert sample.series_cells == 16 and truth.series_cells is None
    truth.series_cells = 16
    assert sample.to_json_dict() == truth.to_json_dict()
    assert sample.soc == 55.5 and sample.current == -30.0 and sample.capacity_ah == 200.0
    again = await session.read()
    assert again.voltage == truth.voltage


async def test_silent_bus_times_out_naming_what_is_missing() -> None:
    sim = JbdCanSimulator()
    sim.silent = True
    link = make_sim_link(sim, url="sim:jbd?variant=can")
    await link.open()
    with pytest.raises(LinkTimeout, match="0x355, 0x356, 0x373, 0x379/0x35F"):
        await session_for(link, timeout=0.05).read()


async def test_session_over_the_virtual_bus_through_the_can_transport() -> None:
    from bmshost_transport_can.hub import BusHub
    from bmshost_transport_can.link import open_can_link
    from bmshost_transport_can.simbus import SimulatorOnBus

    channel = f"jbd-can-{next(_channels)}"
    sim = JbdCanSimulator(cells=16, soc=70.25, current=0.0)
    variant = _variant()
    async with SimulatorOnBus(sim, channel, period=0.05) as served:
        link = open_can_link(
            parse_link_url(f"can://{channel}?interface=virtual"), variant.link_params, hub=BusHub()
        )
        await link.open()
        session = session_for(link, timeout=1.0)
        sample = await session.read()
        assert sample.soc == 70.25 and sample.model == "UP16S015-16S100A"
        assert sample.voltage == sim.voltage() and sample.bms_charge_current_limit == 50.0
        assert link.health["frames_received"] >= 19 and served.sent >= 19
        await link.close()


def test_can_variant_registration() -> None:
    variant = _variant()
    assert variant.transports == ("can",) and variant.recognise is None
    assert "can_filters" in variant.link_params


# -- cheap polls: one drain per poll, unchanged frames not decoded again -------------------------


def _reference_combine(parts: dict[int, Any]) -> Any:
    """The straightforward combination (every field of every part, 0x35F first), as the oracle
    for ``combine_fields``."""
    from bmshost.model import SAMPLE_FIELDS, Sample

    fields: dict[str, Any] = {}
    alarms: dict[str, int] = {}
    extra: dict[str, Any] = {}
    for ident in sorted(parts, key=lambda i: (i != can_codec.ID_INFO, i)):
        for name in SAMPLE_FIELDS:
            value = getattr(parts[ident], name)
            if value is None:
                continue
            if name == "alarms":
                alarms.update(value)
            elif name == "extra":
                extra.update(value)
            else:
                fields[name] = value
    sample = Sample(**fields, alarms=alarms or None)
    model = (str(extra.pop("model_1", "")) + str(extra.pop("model_2", ""))).strip()
    serial = (str(extra.pop("serial_1", "")) + str(extra.pop("serial_2", ""))).strip()
    sample.model = model or sample.model
    sample.serial_number = serial or sample.serial_number
    sample.extra = extra or None
    return sample.fill_derived()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 18), unique=True, min_size=1),
    st.integers(0, 18),
    st.integers(0, 7),
    st.integers(0, 255),
)
def test_combining_kept_fields_equals_combining_samples(
    keep: list[int], index: int, pos: int, value: int
) -> None:
    frames = list(JbdCanSimulator(soc=33.0).broadcast())
    data = bytearray(frames[index].data)
    data[pos % len(data)] = value
    frames[index] = CanFrame(frames[index].arbitration_id, bytes(data), False)
    parts: dict[int, Any] = {}
    for i in keep:
        try:
            parts[frames[i].arbitration_id] = can_codec.decode_frame(frames[i])
        except FrameError:
            pass
    fast = can_codec.combine_fields({i: can_codec.set_fields(p) for i, p in parts.items()})
    assert fast.to_json_dict() == _reference_combine(parts).to_json_dict()
    assert can_codec.combine_decoded(parts).to_json_dict() == fast.to_json_dict()


async def test_a_frame_that_repeats_its_data_is_not_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = JbdCanSimulator(cells=16, current=20.0)
    now = [0.0]
    link = make_sim_link(sim, url="sim:jbd?variant=can", clock=lambda: now[0])
    await link.open()
    session = session_for(link)
    first = await session.read()
    decoded: list[int] = []
    real = can_codec.decode_frame

    def counting(frame: CanFrame) -> Any:
        decoded.append(frame.arbitration_id)
        return real(frame)

    monkeypatch.setattr(can_codec, "decode_frame", counting)
    now[0] += 600.0  # ten minutes of charging: SoC, voltage and the cell extremes move
    second = await session.read()
    assert second.soc is not None and first.soc is not None and second.soc > first.soc
    # names, limits, capacity, alarms ... repeat byte for byte: only what moved is decoded
    assert set(decoded) <= {can_codec.ID_SOC, can_codec.ID_MEASURE, can_codec.ID_EXTREMES,
                            can_codec.ID_LIMITS}
    assert can_codec.ID_SOC in decoded and second.soc == sim.state().soc


async def test_frames_taken_past_a_round_are_kept_for_the_next_read() -> None:
    import can as python_can

    from bmshost_transport_can.hub import BusHub
    from bmshost_transport_can.link import open_can_link
    from bmshost_transport_can.simbus import fd_virtual_bus

    channel = f"jbd-can-rounds-{next(_channels)}"
    sender = python_can.Bus(interface="virtual", channel=channel)
    link = open_can_link(
        parse_link_url(f"can://{channel}?interface=virtual"),
        _variant().link_params,
        hub=BusHub(lambda i, c, b: fd_virtual_bus(c)),  # the SocketCAN receive path
    )
    await link.open()
    try:
        sim = JbdCanSimulator(cells=16, soc=40.0)
        rounds = []
        for soc in (40.0, 41.0):
            sim.soc = soc
            rounds.append(list(sim.broadcast()))
        for frame in rounds[0] + rounds[1]:  # two rounds arrive before the first poll
            sender.send(python_can.Message(arbitration_id=frame.arbitration_id, data=frame.data,
                                           is_extended_id=False))
        session = session_for(link, timeout=1.0)
        assert (await session.read()).soc == 40.0  # ends where round two begins ...
        assert (await session.read()).soc == 41.0  # ... which the next poll finishes
    finally:
        await link.close()
        sender.shutdown()
