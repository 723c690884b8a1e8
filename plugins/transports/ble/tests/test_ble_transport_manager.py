"""The per-adapter connection manager: slot limits, back-off with jitter, adapter reset."""

from __future__ import annotations

import asyncio
import random

import pytest
from ble_fixtures import FakeClock, echo_framer, make_device, make_link, request

from bmshost.errors import LinkError
from bmshost_transport_ble.manager import BackoffPolicy, ConnectionManager
from bmshost_transport_ble.standin import SimulatedBleBackend


def manager(clock: FakeClock, slots: int = 2, **policy: float) -> ConnectionManager:
    return ConnectionManager(
        "hci0",
        slots=slots,
        clock=clock,
        sleep=clock.sleep,
        policy=BackoffPolicy(**policy),
        rng=random.Random(7),
    )  # type: ignore[arg-type]


def addr(i: int) -> str:
    return f"A4:C1:38:00:00:{i:02X}"


async def test_slots_are_bounded_and_handed_on_in_arrival_order() -> None:
    mgr = manager(FakeClock(), slots=2)
    await mgr.acquire(addr(1), 1.0)
    await mgr.acquire(addr(2), 1.0)
    order: list[str] = []

    async def wait(i: int) -> None:
        await mgr.acquire(addr(i), 5.0)
        order.append(addr(i))

    waiters = [asyncio.create_task(wait(i)) for i in (3, 4)]
    await asyncio.sleep(0)
    assert mgr.in_use == (addr(1), addr(2)) and order == []
    mgr.release(addr(1))
    assert mgr.in_use == (addr(2), addr(3))  # handed over at once, to the first waiter
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == [addr(3)]
    mgr.release(addr(2))
    await asyncio.gather(*waiters)
    assert order == [addr(3), addr(4)] and mgr.peak == 2


async def test_slot_wait_times_out_naming_the_holders() -> None:
    mgr = manager(FakeClock(), slots=1)
    await mgr.acquire(addr(1), 1.0)
    with pytest.raises(
        LinkError, match=r"all 1 connection slots of hci0 are busy \(A4:C1:38:00:00:01\)"
    ):
        await mgr.acquire(addr(2), 0.01)
    mgr.release(addr(1))
    assert mgr.in_use == ()  # the timed-out waiter did not take the slot later


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    mgr = manager(FakeClock(), slots=1)
    await mgr.acquire(addr(1), 1.0)
    task = asyncio.create_task(mgr.acquire(addr(2), 5.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    mgr.release(addr(1))
    assert mgr.in_use == ()


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = BackoffPolicy(initial=2.0, factor=2.0, maximum=60.0, jitter=0.2)
    rng = random.Random(1)
    for failures, base in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (20, 60.0)]:
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert max(delays) - min(delays) > base * 0.1  # really jittered


async def test_failed_connects_are_spaced_and_success_resets_the_spacing() -> None:
    clock = FakeClock()
    device = make_device(fail_connects=3)
    backend = SimulatedBleBackend([device])
    mgr = ConnectionManager(
        "hci0",
        slots=2,
        clock=clock,
        sleep=clock.sleep,
        policy=BackoffPolicy(initial=2.0, jitter=0.0),
    )
    link = make_link(backend, manager=mgr, clock=clock)
    for _ in range(3):
        with pytest.raises(LinkError, match="simulated connect failure"):
            await link.open()
    assert clock.sleeps == [2.0, 4.0]  # no wait before the first try, then 2 s, 4 s
    assert mgr.retry_in(device.address) == 8.0
    await link.open()  # waits 8 s, then succeeds
    assert clock.sleeps == [2.0, 4.0, 8.0]
    assert mgr.retry_in(device.address) == 0.0 and mgr.failures(device.address) == 0
    assert await link.request(request(b"k"), echo_framer, 1.0) == b"\xab\x03kkk"
    await link.close()


async def test_adapter_reset_is_a_rate_limited_last_resort() -> None:
    clock = FakeClock()
    backend = SimulatedBleBackend([])
    mgr = ConnectionManager(
        "hci0",
        slots=2,
        clock=clock,
        sleep=clock.sleep,
        reset_adapter=backend.reset_adapter,
        policy=BackoffPolicy(reset_after=3, reset_cooldown=100.0, jitter=0.0),
    )
    for _ in range(3):
        await mgr.record_failure(addr(1))
    assert backend.resets == ["hci0"]
    for _ in range(3):  # three more within the cool-down: no second reset
        await mgr.record_failure(addr(2))
    assert backend.resets == ["hci0"]
    clock.now += 101
    for _ in range(3):
        await mgr.record_failure(addr(2))
    assert backend.resets == ["hci0", "hci0"] and mgr.resets == 2


async def test_success_clears_the_adapter_failure_streak() -> None:
    clock = FakeClock()
    backend = SimulatedBleBackend([])
    mgr = ConnectionManager(
        "hci0",
        clock=clock,
        sleep=clock.sleep,
        reset_adapter=backend.reset_adapter,
        policy=BackoffPolicy(reset_after=3),
    )
    await mgr.record_failure(addr(1))
    await mgr.record_failure(addr(1))
    mgr.record_success(addr(2))
    await mgr.record_failure(addr(1))
    assert backend.resets == []


async def test_a_failing_reset_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(adapter: str) -> None:
        raise FileNotFoundError(2, "No such file", "/run/dbus/system_bus_socket")

    clock = FakeClock()
    mgr = ConnectionManager(
        "hci0",
        clock=clock,
        sleep=clock.sleep,
        reset_adapter=broken,
        policy=BackoffPolicy(reset_after=1),
    )
    await mgr.record_failure(addr(1))
    assert "no D-Bus system bus" in caplog.text


async def test_rotating_links_share_few_slots() -> None:
    backend = SimulatedBleBackend([make_device(addr(i)) for i in range(8)])
    clock = FakeClock()
    mgr = ConnectionManager("hci0", slots=2, clock=clock, sleep=clock.sleep)
    links = [
        make_link(backend, manager=mgr, address=addr(i), query="mode=rotate&idle_disconnect=0")
        for i in range(8)
    ]

    async def poll(i: int) -> bytes:
        link = links[i]
        if not link.is_open:
            await link.open()
        async with link.exclusive():
            return await link.request(request(bytes([i])), echo_framer, 1.0)

    for _ in range(3):
        replies = await asyncio.gather(*(poll(i) for i in range(8)))
        assert replies == [bytes((0xAB, 3, i, i, i)) for i in range(8)]
    assert mgr.peak <= 2 and backend.peak <= 2
    for link in links:
        await link.close()


async def test_keep_mode_beyond_the_slots_fails_clearly() -> None:
    backend = SimulatedBleBackend([make_device(addr(1)), make_device(addr(2))])
    clock = FakeClock()
    mgr = ConnectionManager("hci0", slots=1, clock=clock, sleep=clock.sleep)
    first = make_link(backend, manager=mgr, address=addr(1))
    second = make_link(backend, manager=mgr, address=addr(2), query="connect_timeout=0.01")
    await first.open()
    with pytest.raises(LinkError, match="use mode=rotate"):
        await second.open()
    await first.close()
    await second.open()
    await second.close()


def test_a_manager_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        ConnectionManager(slots=0)


async def test_idle_disconnect_in_flight_never_overbooks_the_adapter() -> None:
    backend = SimulatedBleBackend([make_device(addr(1))])
    clock = FakeClock()
    mgr = ConnectionManager("hci0", slots=1, clock=clock, sleep=clock.sleep)
    link = make_link(backend, manager=mgr, address=addr(1), query="mode=rotate&idle_disconnect=0")
    await link.open()
    for i in range(20):
        await link.request(request(bytes([i])), echo_framer, 1.0)
        if i % 2:
            await asyncio.sleep(0)  # the idle timer fires: its disconnect is still in flight
    assert backend.peak == 1 and mgr.peak == 1
    await link.close()
    assert backend.connected == 0 and mgr.in_use == ()
