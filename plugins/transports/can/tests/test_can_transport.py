"""python-can links on the virtual bus: filters, shared buses, cache, periodic sends, bitrate."""

from __future__ import annotations

import json
from typing import Any

import can
import pytest
from can_fixtures import BeaconSimulator, channel, until

from bmshost.errors import ConfigError, LinkError
from bmshost.link import CanFrame
from bmshost.plugins import load_plugins
from bmshost.url import parse_link_url
from bmshost_transport_can.cache import FrameCache
from bmshost_transport_can.hub import BusHub, python_can_bus
from bmshost_transport_can.link import PythonCanLink, open_can_link
from bmshost_transport_can.params import parse_params
from bmshost_transport_can.simbus import SimulatorOnBus, fd_virtual_bus
from bmshost_transport_can.socketcan import current_bitrate, ensure_bitrate


def link_for(ch: str, query: str = "", hub: BusHub | None = None, **kw: Any) -> PythonCanLink:
    url = parse_link_url(f"can://{ch}?interface=virtual{'&' + query if query else ''}")
    return open_can_link(url, {}, hub=hub or BusHub(), **kw)


def test_url_forms() -> None:
    p = parse_params(parse_link_url("can://can0?bitrate=250000"))
    assert (p.interface, p.channel, p.bitrate, p.auto_bitrate) == (
        "socketcan",
        "can0",
        250000,
        False,
    )
    p = parse_params(parse_link_url("can://PCAN_USBBUS1?interface=pcan&bitrate=auto"))
    assert (p.interface, p.channel, p.bitrate, p.auto_bitrate) == (
        "pcan",
        "PCAN_USBBUS1",
        None,
        True,
    )
    p = parse_params(parse_link_url("can://can0?filter=351:7F0,18FF50E5"))
    assert [(f.can_id, f.can_mask) for f in p.filters] == [(0x351, 0x7F0), (0x18FF50E5, 0x1FFFFFFF)]
    p = parse_params(
        parse_link_url("can://can0"),
        {"bitrate": 500000, "can_filters": [{"can_id": 0x350, "can_mask": 0x7F0}]},
    )
    assert p.bitrate == 500000 and p.filters[0].accepts(0x35A, False)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("can://", "expected can://<channel>"),
        ("can://can0?bitrate=fast", "bit/s or auto"),
        ("can://can0?bitrate=5", "outside"),
        ("can://can0?filter=xyz", "hex ID"),
        ("can://can0?colour=red", "unknown parameter"),
        ("can://can0?probe_window=soon", "seconds"),
    ],
)
def test_bad_urls(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_params(parse_link_url(text))


async def test_broadcasts_arrive_in_order_and_fill_the_cache() -> None:
    ch = channel("bcast")
    async with SimulatorOnBus(BeaconSimulator(), ch, period=0.01):
        link = link_for(ch)
        await link.open()
        frames = [await link.recv(1.0) for _ in range(4)]
        assert [f.arbitration_id for f in frames if f] == [0x351, 0x355, 0x351, 0x355]
        assert frames[2] is not None and frames[2].data[0] == frames[0].data[0] + 1  # type: ignore[union-attr]
        cached = link.cache.get(0x355)
        assert cached is not None and cached.data[1] == 2
        health = link.health
        assert health["frames_received"] >= 4 and health["ids_seen"] == 2
        await link.close()
        assert not link.is_open


async def test_per_link_filters_on_one_shared_bus() -> None:
    ch = channel("filters")
    hub = BusHub()
    sim = BeaconSimulator()
    async with SimulatorOnBus(sim, ch, period=0.01):
        only_351 = link_for(ch, "filter=351", hub=hub)
        only_355 = link_for(ch, "filter=355:7FF", hub=hub)
        await only_351.open()
        await only_355.open()
        assert (
            hub.get(("virtual", ch)) is not None and len(hub.get(("virtual", ch)).subscribers) == 2
        )  # type: ignore[union-attr]
        a = [await only_351.recv(1.0) for _ in range(3)]
        b = [await only_355.recv(1.0) for _ in range(3)]
        assert {f.arbitration_id for f in a if f} == {0x351}
        assert {f.arbitration_id for f in b if f} == {0x355}
        await only_351.close()
        assert hub.get(("virtual", ch)) is not None  # still used by the other link
        await only_355.close()
        assert hub.get(("virtual", ch)) is None  # last one out closes the bus


async def test_request_and_reply() -> None:
    ch = channel("req")
    sim = BeaconSimulator()
    async with SimulatorOnBus(sim, ch, period=10.0):
        link = link_for(ch, "filter=101")
        await link.open()
        await link.send(CanFrame(0x100, b"\x01\x02\x03", False))
        reply = await link.recv(1.0)
        assert reply == CanFrame(0x101, b"\x01\x02\x03", False)
        assert await link.recv(0.01) is None
        await link.close()


async def test_periodic_requests_until_close() -> None:
    ch = channel("periodic")
    sim = BeaconSimulator()
    async with SimulatorOnBus(sim, ch, period=10.0):
        link = link_for(ch, "filter=101")
        await link.open()
        link.start_periodic(CanFrame(0x305, b"\x00" * 8, False), 0.01)
        await until(lambda: len(sim.requests) >= 3)
        await link.close()
        count = len(sim.requests)
        await _settle()
        assert len(sim.requests) == count  # stopped with the link
        assert all(f.arbitration_id == 0x305 for f in sim.requests)
        with pytest.raises(ValueError):
            link.start_periodic(CanFrame(0x305, b"", False), 0)


async def _settle() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def test_closed_link_refuses_io() -> None:
    link = link_for(channel("closed"))
    with pytest.raises(LinkError, match="not open"):
        await link.send(CanFrame(1, b"", False))
    with pytest.raises(LinkError, match="not open"):
        await link.recv(0.01)


def _per_bitrate_factory(interface: str, ch: str, bitrate: int | None) -> Any:
    # A bus per bitrate: a BMS on "<ch>@500000" is heard only when the link listens at 500 kbit/s.
    return python_can_bus("virtual", f"{ch}@{bitrate}", None)


async def test_auto_bitrate_finds_the_rate_the_bms_uses() -> None:
    ch = channel("auto")
    async with SimulatorOnBus(BeaconSimulator(), f"{ch}@500000", period=0.01):
        link = link_for(ch, "bitrate=auto&probe_window=0.2", hub=BusHub(_per_bitrate_factory))
        await link.open()
        assert link.bitrate == 500000 and link.health["bitrate"] == 500000
        assert (await link.recv(1.0)) is not None
        await link.close()


async def test_auto_bitrate_on_a_silent_bus_names_what_was_tried() -> None:
    link = link_for(
        channel("silent"), "bitrate=auto&probe_window=0.02", hub=BusHub(_per_bitrate_factory)
    )
    with pytest.raises(LinkError, match=r"no BMS frames heard at 250 kbit/s, 500 kbit/s"):
        await link.open()
    assert not link.is_open


async def test_socketcan_bitrate_is_applied_with_ip() -> None:
    calls: list[list[str]] = []
    current = json.dumps([{"linkinfo": {"info_data": {"bittiming": {"bitrate": 500000}}}}])

    async def runner(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        return (0, current, "") if "show" in argv else (0, "", "")

    await ensure_bitrate("can0", 500000, runner)
    assert len(calls) == 1  # already right: nothing changed
    await ensure_bitrate("can0", 250000, runner)
    assert calls[-2] == ["ip", "link", "set", "dev", "can0", "type", "can", "bitrate", "250000"]

    async def refusing(argv: list[str]) -> tuple[int, str, str]:
        return (
            (0, "[]", "")
            if "show" in argv
            else (2, "", "RTNETLINK answers: Operation not permitted")
        )

    with pytest.raises(
        LinkError, match=r"Operation not permitted.*ip link set can0 type can bitrate 250000"
    ):
        await ensure_bitrate("can0", 250000, refusing)
    assert current_bitrate("not json") is None and current_bitrate("[{}]") is None


async def test_socketcan_link_sets_its_bitrate_before_opening() -> None:
    ch = channel("sock")
    asked: list[tuple[str, int]] = []

    async def setter(channel_name: str, bitrate: int) -> None:
        asked.append((channel_name, bitrate))

    url = parse_link_url(f"can://{ch}?bitrate=250000")  # socketcan by default
    link = open_can_link(
        url,
        {},
        hub=BusHub(lambda i, c, b: python_can_bus("virtual", c, None)),
        set_socketcan_bitrate=setter,
    )
    await link.open()
    assert asked == [(ch, 250000)]
    await link.close()


async def test_missing_interface_is_a_clear_link_error() -> None:
    link = open_can_link(parse_link_url("can://nosuchcan7"), {}, hub=BusHub())
    with pytest.raises(LinkError, match="CAN socketcan:nosuchcan7: cannot open"):
        await link.open()


def test_frame_cache_expiry_and_silence() -> None:
    now = [0.0]
    cache = FrameCache(max_age=5.0, silence=2.0, clock=lambda: now[0])
    cache.put(CanFrame(0x351, b"\x01", False))
    now[0] = 1.5
    cache.put(CanFrame(0x355, b"\x02", False))
    now[0] = 3.4
    assert cache.get(0x351) is not None and set(cache.snapshot()) == {0x351, 0x355}
    now[0] = 5.1  # 0x351 is 5.1 s old: stale; and 3.6 s of silence clears the rest
    assert cache.get(0x351) is None and cache.get(0x355) is None and cache.snapshot() == {}
    assert cache.last_frame_age == pytest.approx(3.6)


def test_plugin_registers_can_scheme() -> None:
    spec = load_plugins().registries.transports.for_scheme("can")
    assert spec is not None and spec.kind == "can"
    assert can.__version__.startswith("4.")


# -- the SocketCAN receive path (a descriptor the loop watches), bursts, failures ---------------


def _fd_factory(made: list[Any]) -> Any:
    def factory(interface: str, ch: str, bitrate: int | None) -> Any:
        bus = fd_virtual_bus(ch)
        made.append(bus)
        return bus

    return factory


async def test_socketcan_like_bus_is_read_by_the_loop_in_bursts() -> None:
    import threading

    ch = channel("fd")
    made: list[Any] = []
    sender = can.Bus(interface="virtual", channel=ch)
    link = link_for(ch, "filter=350:7F0", hub=BusHub(_fd_factory(made)))
    await link.open()
    try:
        assert made and made[0].fileno() >= 0
        assert not any(t.name.startswith("CAN reader") for t in threading.enumerate())
        for ident, data in ((0x351, b"\x01"), (0x123, b"\x02"), (0x355, b"\x03"), (0x351, b"\x01")):
            sender.send(can.Message(arbitration_id=ident, data=data, is_extended_id=False))
        first = await link.recv(1.0)  # the loop drains all four in one wake-up ...
        rest = link.drain()  # ... so the rest is queued already
        frames = [first, *rest]
        assert [(f.arbitration_id, f.data) for f in frames if f] == [
            (0x351, b"\x01"),
            (0x355, b"\x03"),
            (0x351, b"\x01"),
        ]  # 0x123 is not this link's
        assert frames[0] is frames[2]  # a repeated frame is the same object: nothing re-made
        assert link.drain() == [] and link.health["frames_received"] == 3
    finally:
        await link.close()
        sender.shutdown()


@pytest.mark.parametrize("socketcan_like", [True, False])
async def test_a_receive_error_fails_the_link_with_the_reason(socketcan_like: bool) -> None:
    ch = channel("fail")
    made: list[Any] = []

    def factory(interface: str, name: str, bitrate: int | None) -> Any:
        bus = fd_virtual_bus(name) if socketcan_like else python_can_bus("virtual", name, None)
        made.append(bus)
        return bus

    sender = can.Bus(interface="virtual", channel=ch)
    hub = BusHub(factory)
    link = link_for(ch, hub=hub)
    await link.open()
    try:
        bus = made[-1]

        def broken(timeout: float | None) -> Any:
            raise can.CanOperationError("interface went down")

        bus._recv_internal = broken
        sender.send(can.Message(arbitration_id=0x351, data=b"\x01", is_extended_id=False))
        with pytest.raises(LinkError, match=r"receive failed .*interface went down"):
            for _ in range(3):  # a reader thread may be inside a receive begun before the patch
                await link.recv(5.0)  # fails when reading stops, not at the timeout
        with pytest.raises(LinkError, match="receive failed"):
            link.drain()
        await link.close()
        await link.open()  # the host reopens the link: a fresh bus
        assert made[-1] is not bus
        sender.send(can.Message(arbitration_id=0x351, data=b"\x02", is_extended_id=False))
        frame = await link.recv(1.0)
        assert frame is not None and frame.data == b"\x02"
    finally:
        await link.close()
        sender.shutdown()


async def test_close_wakes_a_waiting_reader() -> None:
    import asyncio

    link = link_for(channel("wake"))
    await link.open()
    reader = asyncio.create_task(link.recv(30.0))
    await asyncio.sleep(0)
    await link.close()
    with pytest.raises(LinkError, match="not open"):
        await asyncio.wait_for(reader, 10.0)  # at once, not after 30 s
    with pytest.raises(LinkError, match="not open"):
        link.drain()


async def test_each_wait_gets_its_own_deadline() -> None:
    import asyncio

    ch = channel("deadline")
    sender = can.Bus(interface="virtual", channel=ch)
    link = link_for(ch)
    await link.open()
    try:
        assert await link.recv(0.01) is None  # leaves a timer for an early deadline

        async def send_late() -> None:
            await asyncio.sleep(0.05)
            sender.send(can.Message(arbitration_id=0x351, data=b"\x05", is_extended_id=False))

        task = asyncio.create_task(send_late())
        frame = await link.recv(5.0)  # not cut short by the earlier deadline's timer
        assert frame is not None and frame.data == b"\x05"
        await task
        # ... and a short wait after a long one ends on time (a generous bound, not a timing test)
        assert await asyncio.wait_for(link.recv(0.02), 10.0) is None
    finally:
        await link.close()
        sender.shutdown()
