"""BleStreamLink over the bleak stand-in: framing, chunking, characteristics, reconnects."""

from __future__ import annotations

import asyncio

import pytest
from ble_fixtures import ADDR, FakeClock, echo_framer, make_device, make_link, request

from bmshost.errors import ConfigError, LinkError
from bmshost.url import parse_link_url
from bmshost_transport_ble.link import BleStreamLink, open_ble_link
from bmshost_transport_ble.params import parse_params
from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt
from bmshost_transport_ble.uuids import normalize_uuid


def test_params_merge_defaults_and_url() -> None:
    url = parse_link_url("ble://a4:c1:38:00:00:01?mode=rotate&mtu=100&write_response=yes")
    params = parse_params(url, {"notify_uuid": "ff01", "write_uuid": "ff02", "mtu": 23})
    assert params.address == "A4:C1:38:00:00:01"
    assert params.mode == "rotate" and params.mtu == 100 and params.write_response is True
    assert params.notify_uuids == (normalize_uuid("ff01"),)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ble://not-a-mac", "MAC"),
        ("ble://A4:C1:38:00:00:01?bogus=1", "unknown parameter"),
        ("ble://A4:C1:38:00:00:01?mode=sometimes", "mode"),
        ("ble://A4:C1:38:00:00:01?mtu=abc", "not a number"),
        ("ble://A4:C1:38:00:00:01?write_response=maybe", "true or false"),
        ("ble://A4:C1:38:00:00:01?notify_uuid=ff01,fff1", "same number"),
        ("ble://A4:C1:38:00:00:01?write_uuid=xyz", "not a Bluetooth UUID"),
    ],
)
def test_bad_params_are_config_errors(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_params(parse_link_url(text), {"notify_uuid": "ff01", "write_uuid": "ff02"})


def test_uuid_forms() -> None:
    full = "0000ff01-0000-1000-8000-00805f9b34fb"
    assert (
        normalize_uuid("FF01") == normalize_uuid("0xff01") == normalize_uuid(full.upper()) == full
    )
    with pytest.raises(ValueError):
        normalize_uuid("ff0")


async def test_request_reassembles_chunked_notifications_and_splits_writes() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    payload = bytes(range(30))  # request 32 bytes → two writes; reply 92 bytes → five notifications
    reply = await link.request(request(payload), echo_framer, 1.0)
    assert reply == bytes((0xAB, 90)) + payload * 3
    device = backend.devices[ADDR]
    assert [len(w) for w in device.writes] == [20, 12]
    assert link.health["connected"] is True and link.health["rssi"] == -60
    await link.close()
    assert backend.connected == 0 and link.manager.in_use == ()


async def test_larger_mtu_means_fewer_writes() -> None:
    device = make_device(mtu=247)
    backend = SimulatedBleBackend([device])
    link = make_link(backend, query="mtu=247")
    await link.open()
    await link.request(request(bytes(60)), echo_framer, 1.0)
    assert [len(w) for w in device.writes] == [62]
    await link.close()


async def test_alternative_characteristics_are_picked_from_the_device() -> None:
    device = StandinDevice(
        address=ADDR, simulator=make_device().simulator, services=gatt("ff00", "fff1", "fff2")
    )
    backend = SimulatedBleBackend([device])
    url = parse_link_url(f"ble://{ADDR}")
    link = open_ble_link(
        url,
        {"notify_uuid": "ff01,fff1", "write_uuid": "ff02,fff2"},
        backend=backend,
        manager=make_link(backend).manager,
    )
    await link.open()
    assert await link.request(request(b"x"), echo_framer, 1.0) == b"\xab\x03xxx"
    await link.close()


async def test_missing_characteristic_is_a_clear_error_and_frees_the_slot() -> None:
    device = StandinDevice(
        address=ADDR, simulator=make_device().simulator, services=gatt("ffe0", "ffe1", "ffe2")
    )
    backend = SimulatedBleBackend([device])
    link = make_link(backend)
    with pytest.raises(LinkError, match="no notify/write characteristic pair"):
        await link.open()
    assert link.manager.in_use == () and backend.connected == 0
    assert not link.is_open


async def test_absent_device_is_a_clear_error() -> None:
    link = make_link(SimulatedBleBackend([]))
    with pytest.raises(LinkError, match="device not found"):
        await link.open()
    assert link.health["connect_failures"] == 1


async def test_silent_device_times_out() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    backend.devices[ADDR].simulator.silent = True
    with pytest.raises(LinkError, match="no complete reply"):
        await link.request(request(b"a"), echo_framer, 0.05)
    await link.close()


async def test_lost_connection_fails_the_read_at_once_and_reconnects_on_next_write() -> None:
    clock = FakeClock()
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend, clock=clock)
    await link.open()
    await link.request(request(b"a"), echo_framer, 1.0)
    backend.devices[ADDR].simulator.silent = True

    async def drop_soon() -> None:
        await asyncio.sleep(0)
        backend.devices[ADDR].clients[-1].drop()

    task = asyncio.create_task(drop_soon())
    with pytest.raises(LinkError, match="connection lost"):
        await link.request(request(b"b"), echo_framer, 30.0)  # fails long before 30 s
    await task
    assert link.health["connected"] is False and link.manager.in_use == ()
    backend.devices[ADDR].simulator.silent = False
    assert await link.request(request(b"c"), echo_framer, 1.0) == b"\xab\x03ccc"
    assert link.health["reconnects"] == 1
    await link.close()


async def test_connect_hooks_run_on_every_connection() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    seen: list[int] = []

    async def hook(lnk: BleStreamLink) -> None:
        seen.append(len(seen))
        assert await lnk.request(request(b"pw"), echo_framer, 1.0) == b"\xab\x06pwpwpw"

    link.on_connect.append(hook)
    await link.open()
    backend.devices[ADDR].clients[-1].drop()
    await link.request(request(b"z"), echo_framer, 1.0)
    assert seen == [0, 1]
    await link.close()


async def test_failing_handshake_disconnects_with_a_clear_error() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)

    async def hook(lnk: BleStreamLink) -> None:
        raise LinkError("password rejected")

    link.on_connect.append(hook)
    with pytest.raises(LinkError, match="handshake failed: password rejected"):
        await link.open()
    assert backend.connected == 0 and link.manager.in_use == ()


async def test_rotate_mode_releases_the_slot_when_idle() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend, query="mode=rotate&idle_disconnect=0")
    await link.open()
    await link.request(request(b"a"), echo_framer, 1.0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert backend.connected == 0 and link.manager.in_use == ()
    assert link.is_open  # logically open: the next request connects again
    await link.request(request(b"b"), echo_framer, 1.0)
    assert link.health["reconnects"] == 1
    await link.close()


async def test_health_reports_time_since_last_frame_with_injected_clock() -> None:
    clock = FakeClock()
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend, clock=clock)
    await link.open()
    assert link.health["last_frame_age"] is None
    await link.request(request(b"a"), echo_framer, 1.0)
    clock.now += 12.5
    health = link.health
    assert health["last_frame_age"] == 12.5
    assert health["reconnects"] == 0 and health["slots"] == 4 and health["slots_in_use"] == 1
    await link.close()


async def test_write_on_closed_link_is_refused() -> None:
    link = make_link(SimulatedBleBackend([make_device()]))
    with pytest.raises(LinkError, match="not open"):
        await link.write(b"x")


# -- the receive path: one wake-up per frame, found frames are never lost ----------------------


async def test_reader_is_woken_once_per_frame_not_per_notification() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    waits = 0
    wait = link._wait

    async def counting(*args: object) -> None:
        nonlocal waits
        waits += 1
        await wait(*args)  # type: ignore[arg-type]

    link._wait = counting  # type: ignore[method-assign]
    payload = bytes(range(30))  # a 92-byte reply: five notifications, each its own loop turn
    assert await link.request(request(payload), echo_framer, 1.0) == b"\xab\x5a" + payload * 3
    assert waits == 1
    await link.close()


async def test_frames_arriving_in_one_burst_are_all_read() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    await link.write(request(b"a") + request(b"b"))  # two replies in one notification stream
    assert await link.read_frame(echo_framer, 1.0) == b"\xab\x03aaa"
    assert await link.read_frame(echo_framer, 0.0) == b"\xab\x03bbb"  # buffered: no wait
    await link.close()


async def test_a_framer_error_reaches_the_reader() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()

    def broken(buf: bytes) -> tuple[bytes | None, int]:
        raise ValueError("framer bug")

    await link.write(request(b"a"))
    with pytest.raises(ValueError, match="framer bug"):
        await link.read_frame(broken, 5.0)
    await link.close()


async def test_a_frame_found_for_a_cancelled_reader_stays_for_the_next() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    reader = asyncio.create_task(link.read_frame(echo_framer, 5.0))
    await asyncio.sleep(0)  # the reader waits
    client = backend.devices[ADDR].clients[-1]
    client.push(b"\xab\x02hi")  # delivered next loop turn: the callback finds the frame ...
    await asyncio.sleep(0)
    reader.cancel()  # ... and the reader is cancelled before it resumes to take it
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await link.read_frame(echo_framer, 0.0) == b"\xab\x02hi"
    await link.close()


async def test_each_wait_gets_its_own_deadline() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    device = backend.devices[ADDR]
    assert await link.request(request(b"a"), echo_framer, 30.0) == b"\xab\x03aaa"
    device.simulator.silent = True
    # A short timeout after a long one ends on time (the bound is generous, not a timing test:
    # without its own deadline the wait would last the earlier 30 s).
    with pytest.raises(LinkError, match=r"no complete reply within 0\.02 s"):
        await asyncio.wait_for(link.request(request(b"b"), echo_framer, 0.02), 10.0)

    await link.close()


async def test_a_long_wait_is_not_cut_short_by_an_earlier_short_one() -> None:
    backend = SimulatedBleBackend([make_device()])
    link = make_link(backend)
    await link.open()
    device = backend.devices[ADDR]
    assert await link.request(request(b"a"), echo_framer, 0.01) == b"\xab\x03aaa"

    async def answer_late() -> None:
        await asyncio.sleep(0.05)  # after the first request's 0.01 s deadline has passed
        device.clients[-1].push(b"\xab\x01z")

    task = asyncio.create_task(answer_late())
    # b"\x00" is no request: the device stays quiet until the late push
    assert await link.request(b"\x00", echo_framer, 5.0) == b"\xab\x01z"
    await task
    await link.close()
