"""``bmshost.wake.Waker``: woken by the callback, by the deadline, by close; one lazy timer."""

from __future__ import annotations

import asyncio

from bmshost.wake import Waker


async def test_a_wake_ends_the_wait_before_the_deadline() -> None:
    waker = Waker()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, waker.wake)
    start = loop.time()
    await waker.wait(5.0)
    assert loop.time() - start < 4.0 and not waker.waiting


async def test_the_deadline_ends_a_wait_nobody_wakes() -> None:
    waker = Waker()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await waker.wait(0.02)
    assert loop.time() - start >= 0.02 - 1e-3


async def test_a_later_deadline_reuses_the_armed_timer_and_still_expires_on_time() -> None:
    waker = Waker()
    loop = asyncio.get_running_loop()
    loop.call_later(0.001, waker.wake)
    await waker.wait(0.01)  # arms a timer for +10 ms, woken early: the timer stays armed
    timer = waker._timer
    start = loop.time()
    await waker.wait(0.05)  # later deadline: no new timer; the old one re-arms when it fires
    assert loop.time() - start >= 0.05 - 1e-3
    assert timer is not None and timer.cancelled() is False


async def test_an_earlier_deadline_replaces_the_timer() -> None:
    waker = Waker()
    loop = asyncio.get_running_loop()
    loop.call_later(0.001, waker.wake)
    await waker.wait(10.0)
    start = loop.time()
    await waker.wait(0.02)
    assert 0.02 - 1e-3 <= loop.time() - start < 5.0


async def test_close_wakes_the_reader_and_drops_the_timer() -> None:
    waker = Waker()
    loop = asyncio.get_running_loop()
    task = loop.create_task(waker.wait(10.0))
    await asyncio.sleep(0)
    assert waker.waiting
    waker.close()
    await asyncio.wait_for(task, 1.0)
    assert waker._timer is None and not waker.waiting
    waker.wake()  # nobody waits: nothing happens


async def test_a_cancelled_wait_leaves_no_reader_behind() -> None:
    waker = Waker()
    task = asyncio.get_running_loop().create_task(waker.wait(10.0))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not waker.waiting
    waker.close()
