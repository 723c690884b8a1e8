"""PushedStreamLink: framing in the receive callback, one wake-up per frame, failures, deadlines.

The link's callback side is driven directly (``_received`` / ``_receive_failed``), as the
serial port's reader callback and the TCP protocol drive it; the pty and TCP tests in
test_serial_links.py run the same paths through real descriptors.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.errors import FrameError, LinkError, LinkTimeout
from bmshost.link import Framer
from bmshost.url import parse_link_url
from bmshost_transport_serial.pushed import MAX_UNREAD, PushedStreamLink


class _Pushed(PushedStreamLink):
    """The smallest concrete link: writes are recorded, bytes come from the test."""

    def __init__(self) -> None:
        super().__init__(parse_link_url("tcp://test:1"))
        self.opened = False
        self.written: list[bytes] = []
        self.waits = 0

    async def open(self) -> None:
        self.opened = True
        self._start_receiving()

    async def close(self) -> None:
        self.opened = False
        self._stop_receiving("test link closed while a reply was awaited")

    @property
    def is_open(self) -> bool:
        return self.opened

    async def _write(self, data: bytes) -> None:
        self.written.append(data)

    async def _wait(self, framer: Framer | None, timeout: float) -> None:
        self.waits += 1
        await super()._wait(framer, timeout)


def _lines(buf: bytes) -> tuple[bytes | None, int]:
    """Newline-terminated frames; junk before a ``<`` start marker is skipped."""
    start = buf.find(b"<")
    if start < 0:
        return None, len(buf)
    end = buf.find(b"\n", start)
    if end < 0:
        return None, start
    return buf[start : end + 1], end + 1


async def _waiting(task: asyncio.Task[bytes], link: _Pushed) -> None:
    """Let ``task`` run until it waits for the link's callback."""
    for _ in range(10):
        await asyncio.sleep(0)
        if link._waker.waiting:
            return
    raise AssertionError("the reader never started waiting")


async def test_frame_split_over_many_chunks_wakes_the_reader_once() -> None:
    link = _Pushed()
    await link.open()
    seen: list[bytes] = []

    def framer(buf: bytes) -> tuple[bytes | None, int]:
        seen.append(bytes(buf))
        return _lines(buf)

    task = asyncio.create_task(link.read_frame(framer, 10.0))
    await _waiting(task, link)
    for byte in b"xx<hello>\n<next":
        link._received(bytes([byte]))
        await asyncio.sleep(0)
    assert await task == b"<hello>\n"
    assert link.waits == 1  # one wait, however many chunks
    assert b"<hello" in seen  # the callback framed the partial reply as it grew
    # The bytes after the frame stay buffered for the next reader.
    task = asyncio.create_task(link.read_frame(framer, 10.0))
    await _waiting(task, link)
    link._received(b">\n")
    assert await task == b"<next>\n"


async def test_several_frames_in_one_chunk_are_all_delivered() -> None:
    link = _Pushed()
    await link.open()
    task = asyncio.create_task(link.read_frame(_lines, 10.0))
    await _waiting(task, link)
    link._received(b"<a>\n<b>\n<c")
    assert await task == b"<a>\n"
    assert await link.read_frame(_lines, 10.0) == b"<b>\n"  # buffered: no wait
    assert link.waits == 1
    with pytest.raises(LinkTimeout):
        await link.read_frame(_lines, 0.01)
    link._received(b">\n")
    assert await link.read_frame(_lines, 0.0) == b"<c>\n"


async def test_timeout_keeps_partial_data_and_request_discards_it() -> None:
    link = _Pushed()
    await link.open()
    task = asyncio.create_task(link.read_frame(_lines, 0.02))
    await _waiting(task, link)
    link._received(b"<par")
    with pytest.raises(LinkTimeout, match=r"no complete reply within 0\.02 s"):
        await task
    # As with the base StreamLink: the partial bytes stay for a reader that continues...
    link._received(b"tial>\n")
    assert await link.read_frame(_lines, 0.0) == b"<partial>\n"
    # ...and a new request drops stale ones before writing.
    link._received(b"<stale")
    task = asyncio.create_task(link.request(b"ask", _lines, 10.0))
    await _waiting(task, link)
    link._received(b"<fresh>\n")
    assert await task == b"<fresh>\n"
    assert link.written == [b"ask"]


async def test_failure_wakes_the_reader_at_once_and_stays_until_reopen() -> None:
    link = _Pushed()
    await link.open()
    task = asyncio.create_task(link.read_frame(_lines, 30.0))
    await _waiting(task, link)
    link._received(b"<half")
    link._receive_failed("test: read failed (gone); device unplugged?")
    link._receive_failed("a later reason is not the news")
    with pytest.raises(LinkError, match="device unplugged") as caught:
        await task
    assert not isinstance(caught.value, LinkTimeout)
    with pytest.raises(LinkError, match="device unplugged"):
        await link.request(b"again", _lines, 30.0)  # no wait: nothing can arrive
    with pytest.raises(LinkError, match="device unplugged"):
        await link.read_some(30.0)
    await link.close()
    await link.open()
    task = asyncio.create_task(link.read_frame(_lines, 10.0))
    await _waiting(task, link)
    link._received(b"<back>\n")
    assert await task == b"<back>\n"


async def test_frames_that_arrived_before_a_failure_are_still_delivered() -> None:
    link = _Pushed()
    await link.open()
    link._received(b"<last>\n")
    link._receive_failed("test: connection closed by the gateway")
    assert await link.read_frame(_lines, 1.0) == b"<last>\n"
    with pytest.raises(LinkError, match="closed by the gateway"):
        await link.read_frame(_lines, 1.0)


async def test_close_while_a_reader_waits_fails_it_at_once() -> None:
    link = _Pushed()
    await link.open()
    task = asyncio.create_task(link.read_frame(_lines, 30.0))
    await _waiting(task, link)
    await link.close()
    with pytest.raises(LinkError, match="closed while a reply was awaited"):
        await task
    with pytest.raises(LinkError, match="not open"):
        await link.read_frame(_lines, 1.0)
    assert link._waker._timer is None  # no deadline timer outlives the link


async def test_framer_error_reaches_the_reader() -> None:
    link = _Pushed()
    await link.open()

    def broken(buf: bytes) -> tuple[bytes | None, int]:
        raise FrameError("driver says no")

    task = asyncio.create_task(link.read_frame(broken, 10.0))
    await _waiting(task, link)
    link._received(b"abc")
    with pytest.raises(FrameError, match="driver says no"):
        await task
    assert await link.read_some(0.0) == b"abc"  # the bytes are kept


async def test_cancelled_reader_gives_its_frame_back() -> None:
    link = _Pushed()
    await link.open()
    task = asyncio.create_task(link.read_frame(_lines, 10.0))
    await _waiting(task, link)
    link._received(b"<mine>\n<next>\n")  # the frame is found in the callback...
    task.cancel()  # ...and the reader is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await link.read_frame(_lines, 0.0) == b"<mine>\n"
    assert await link.read_frame(_lines, 0.0) == b"<next>\n"


async def test_one_deadline_timer_follows_later_deadlines_and_shorter_ones() -> None:
    link = _Pushed()
    await link.open()
    loop = asyncio.get_running_loop()
    # A long wait arms the timer; a shorter one afterwards replaces it (it must not wait the
    # long one out), and a reader woken early leaves the timer armed for the next deadline.
    task = asyncio.create_task(link.read_frame(_lines, 60.0))
    await _waiting(task, link)
    link._received(b"<one>\n")
    assert await task == b"<one>\n"
    assert link._waker._timer is not None and link._waker._timer.when() > loop.time() + 30
    with pytest.raises(LinkTimeout):  # not TimeoutError: the 60 s timer was not waited out
        await asyncio.wait_for(link.read_frame(_lines, 0.02), 5.0)
    # Early timer, later deadline: the timer fires at its old time and re-arms for the new one.
    task = asyncio.create_task(link.read_frame(_lines, 0.01))
    await _waiting(task, link)
    link._received(b"<two>\n")
    assert await task == b"<two>\n"
    early = link._waker._timer
    assert early is not None
    task = asyncio.create_task(link.read_frame(_lines, 0.2))
    await _waiting(task, link)
    assert link._waker._timer is early  # not re-made for a later deadline
    with pytest.raises(LinkTimeout):
        await asyncio.wait_for(task, 5.0)


async def test_plain_reads_wake_on_any_bytes_and_time_out_empty() -> None:
    link = _Pushed()
    await link.open()
    assert await link.read_some(0.01) == b""
    task = asyncio.create_task(link.read_some(10.0))
    for _ in range(10):
        await asyncio.sleep(0)
    link._received(b"\x01\x02")
    assert await task == b"\x01\x02"


async def test_a_second_reader_at_once_is_refused_not_left_hanging() -> None:
    link = _Pushed()
    await link.open()
    first = asyncio.create_task(link.read_frame(_lines, 10.0))
    await _waiting(first, link)
    with pytest.raises(LinkError, match="already waiting"):
        await link.read_frame(_lines, 10.0)
    link._received(b"<ok>\n")
    assert await first == b"<ok>\n"


async def test_unread_bytes_are_bounded() -> None:
    link = _Pushed()
    await link.open()
    for _ in range(3):
        link._received(bytes(MAX_UNREAD // 2) + b"<")  # nobody reads
    assert len(link._rx) == MAX_UNREAD
    assert link._rx.endswith(b"<")  # the newest are kept
    # A reader whose framer never completes a frame does not hoard either.
    task = asyncio.create_task(link.read_frame(lambda buf: (None, 0), 10.0))
    await _waiting(task, link)
    link._received(bytes(MAX_UNREAD))
    assert len(link._rx) == MAX_UNREAD
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@settings(max_examples=40, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").replace(b"<", b"")),
                    min_size=1, max_size=4),
    junk=st.binary(max_size=6).map(lambda b: b.replace(b"<", b"")),
    cuts=st.lists(st.integers(min_value=1, max_value=60), max_size=8),
)
def test_any_chunking_gives_the_same_frames(
    frames: list[bytes], junk: bytes, cuts: list[int]
) -> None:
    """However the stream is cut into chunks, the reader gets exactly the frames sent."""
    stream = junk + b"".join(b"<" + f + b">\n" for f in frames)
    chunks: list[bytes] = []
    at = 0
    for cut in sorted(set(cuts)):
        if at < cut < len(stream):
            chunks.append(stream[at:cut])
            at = cut
    chunks.append(stream[at:])

    async def scenario() -> list[bytes]:
        link = _Pushed()
        await link.open()
        got: list[bytes] = []

        async def reader() -> None:
            for _ in frames:
                got.append(await link.read_frame(_lines, 10.0))

        task = asyncio.create_task(reader())
        for chunk in chunks:
            await asyncio.sleep(0)
            link._received(chunk)
        await asyncio.wait_for(task, 5.0)
        return got

    assert asyncio.run(scenario()) == [b"<" + f + b">\n" for f in frames]
