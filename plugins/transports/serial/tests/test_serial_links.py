"""Serial, TCP and error paths of the serial transport, on real ptys and sockets."""

from __future__ import annotations

import asyncio
import errno
import os
import tty
from collections.abc import Callable, Iterator

import pytest

from bmshost.errors import ConfigError, LinkError, LinkTimeout
from bmshost.link import StreamLink
from bmshost.url import parse_link_url
from bmshost_transport_serial import links
from bmshost_transport_serial.links import SerialLink, TcpLink, open_link


def _framer(buf: bytes) -> tuple[bytes | None, int]:
    end = buf.find(b"\n")
    return (buf[: end + 1], end + 1) if end >= 0 else (None, 0)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


async def test_request_over_pty(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    link = open_link(parse_link_url(f"serial://{path}?baud=19200&parity=E"), {"baud": 9600})
    assert isinstance(link, SerialLink) and link.settings["baudrate"] == 19200
    await link.open()
    try:
        async def device() -> None:
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(None, os.read, master, 100)
            assert data == b"ping"
            os.write(master, b"junk\npo")  # a stale line, then a reply in two pieces
            await asyncio.sleep(0.02)
            os.write(master, b"ng\n")

        task = asyncio.create_task(device())
        link.discard_input()
        await link.write(b"ping")
        first = await link.read_frame(_framer, 1.0)
        second = await link.read_frame(_framer, 1.0)
        await task
        assert (first, second) == (b"junk\n", b"pong\n")
        with pytest.raises(LinkTimeout):
            await link.read_frame(_framer, 0.05)
    finally:
        await link.close()
    assert not link.is_open


async def test_missing_port_is_a_clear_error() -> None:
    link = open_link(parse_link_url("/dev/ttyDOESNOTEXIST0"), {})
    with pytest.raises(LinkError, match="no such device"):
        await link.open()


async def test_busy_port_is_a_clear_error(pty_pair: tuple[int, str]) -> None:
    _, path = pty_pair
    first = open_link(parse_link_url(path), {})
    second = open_link(parse_link_url(path), {})
    await first.open()
    try:
        with pytest.raises(LinkError, match="busy"):
            await second.open()
    finally:
        await first.close()


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="baud"):
        open_link(parse_link_url("serial:///dev/ttyUSB0?baud=fast"), {})
    with pytest.raises(ConfigError, match="parity"):
        open_link(parse_link_url("serial:///dev/ttyUSB0?parity=X"), {})
    with pytest.raises(ConfigError, match="HOST:PORT"):
        open_link(parse_link_url("tcp://gateway"), {})


async def test_tcp_gateway_round_trip_and_disconnect() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(data.upper() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        link = open_link(parse_link_url(f"tcp://127.0.0.1:{port}"), {})
        assert isinstance(link, TcpLink)
        await link.open()
        assert await link.request(b"hello", _framer, 1.0) == b"HELLO\n"
        with pytest.raises(LinkError, match="closed"):
            await link.read_frame(_framer, 1.0)
        await link.close()


async def test_tcp_refused_is_a_clear_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    link = open_link(parse_link_url(f"tcp://127.0.0.1:{port}"), {})
    with pytest.raises(LinkError, match="cannot connect"):
        await link.open()


# -- the read path: framing in the reader callback, failures, close, full output buffer --------


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (a hang guard, not a timing assertion)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


async def test_frame_split_over_many_chunks_on_a_pty(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    link = open_link(parse_link_url(path), {})
    assert isinstance(link, SerialLink)
    await link.open()
    seen: list[bytes] = []

    def framer(buf: bytes) -> tuple[bytes | None, int]:
        seen.append(bytes(buf))
        return _framer(buf)

    try:
        task = asyncio.create_task(link.read_frame(framer, 10.0))
        reply = b"a reply, one byte at a time\n"
        for i in range(len(reply)):
            os.write(master, reply[i : i + 1])
            # The next byte goes out only once the link's callback has framed this one, so
            # every byte is its own chunk.
            await _until(lambda i=i: bool(seen) and seen[-1] == reply[: i + 1])
        assert await task == reply
        assert len(seen) == len(reply)
    finally:
        await link.close()


async def test_unplug_while_a_read_waits_fails_it_at_once() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    link = open_link(parse_link_url(os.ttyname(slave)), {})
    assert isinstance(link, SerialLink)
    wakeups = 0
    on_readable = link._on_readable

    def counting() -> None:
        nonlocal wakeups
        wakeups += 1
        on_readable()

    link._on_readable = counting  # type: ignore[method-assign]
    await link.open()
    try:
        task = asyncio.create_task(link.read_frame(_framer, 30.0))
        await asyncio.sleep(0.01)
        os.close(master)  # the far end vanishes, as a USB adapter pulled out: hang-up
        with pytest.raises(LinkError, match="device unplugged") as caught:
            await asyncio.wait_for(task, 10.0)  # long before the read's own 30 s
        assert not isinstance(caught.value, LinkTimeout)
        # A dead descriptor stays readable: the link stops watching it instead of spinning.
        calls = wakeups
        await asyncio.sleep(0.05)
        assert wakeups == calls
        with pytest.raises(LinkError):
            await link.request(b"ping", _framer, 30.0)  # write or read fails, never a wait
    finally:
        await link.close()
        os.close(slave)


async def test_read_error_is_a_clear_link_error(
    pty_pair: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO from read(2) (how some adapters report removal) fails the waiting read."""
    master, path = pty_pair
    link = open_link(parse_link_url(path), {})
    await link.open()
    try:
        task = asyncio.create_task(link.read_frame(_framer, 30.0))
        await asyncio.sleep(0.01)

        def eio(fd: int, n: int) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(links.os, "read", eio)
        os.write(master, b"x")
        with pytest.raises(LinkError, match=r"read failed \(\[Errno 5\] Input/output error\)"):
            await asyncio.wait_for(task, 10.0)
    finally:
        monkeypatch.undo()
        await link.close()


async def test_timeout_with_partial_data_on_a_pty(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    link = open_link(parse_link_url(path), {})
    await link.open()
    try:
        os.write(master, b"half a")
        with pytest.raises(LinkTimeout, match="no complete reply"):
            await link.read_frame(_framer, 0.05)
        os.write(master, b" line\n")
        assert await link.read_frame(_framer, 10.0) == b"half a line\n"
        # A request drops what is left of an earlier reply (buffered or still in the driver).
        os.write(master, b"stale")
        await _until(lambda: bool(link._rx))
        os.write(master, b" and more stale")
        link.discard_input()
        await link.write(b"?")
        assert os.read(master, 10) == b"?"
        os.write(master, b"fresh\n")
        assert await link.read_frame(_framer, 10.0) == b"fresh\n"
    finally:
        await link.close()


async def test_close_while_a_reader_waits_then_reopen(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    link = open_link(parse_link_url(path), {})
    await link.open()
    task = asyncio.create_task(link.read_frame(_framer, 30.0))
    await asyncio.sleep(0.01)
    await link.close()
    with pytest.raises(LinkError, match="closed while a reply was awaited"):
        await asyncio.wait_for(task, 10.0)
    with pytest.raises(LinkError, match="not open"):
        await link.read_frame(_framer, 1.0)
    with pytest.raises(LinkError, match="not open"):
        await link.write(b"x")
    await link.open()  # fresh: the old failure is gone, the exclusive lock was released
    try:
        os.write(master, b"old\n")  # before the request: stale
        await _until(lambda: bool(link._rx))
        request = asyncio.create_task(link.request(b"ping", _framer, 10.0))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, os.read, master, 10) == b"ping"
        os.write(master, b"pong\n")
        assert await request == b"pong\n"
    finally:
        await link.close()


async def test_write_waits_for_room_and_gives_up_cleanly(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    link = open_link(parse_link_url(path), {})
    assert isinstance(link, SerialLink)
    link.write_timeout = 0.1
    await link.open()
    try:
        # Nobody reads the far end: the output buffer fills and the write gives up.
        with pytest.raises(LinkError, match=r"did not take it within 0\.1 s"):
            await link.write(bytes(1 << 20))
        while True:  # empty what did get through
            try:
                await asyncio.get_running_loop().run_in_executor(None, _read_nonblocking, master)
            except BlockingIOError:
                break
        # With a far end reading, a write larger than the buffer completes, in order.
        link.write_timeout = 10.0
        data = bytes(range(256)) * 1024
        received = bytearray()

        def drain() -> None:
            while len(received) < len(data):
                received.extend(os.read(master, 65536))

        reader = asyncio.get_running_loop().run_in_executor(None, drain)
        await link.write(data)
        await asyncio.wait_for(reader, 10.0)
        assert bytes(received) == data
        # Closing the link while a write waits for room fails that write at once.
        link.write_timeout = 30.0
        writing = asyncio.create_task(link.write(bytes(1 << 20)))
        await asyncio.sleep(0.02)
        await link.close()
        with pytest.raises(LinkError, match="closed while writing"):
            await asyncio.wait_for(writing, 10.0)
    finally:
        await link.close()


def _read_nonblocking(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 20)
    finally:
        os.set_blocking(fd, True)


async def test_tcp_frames_split_close_and_gateway_gone() -> None:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        link = open_link(parse_link_url(f"tcp://127.0.0.1:{port}"), {})
        assert isinstance(link, TcpLink)
        await link.open()
        reader, writer = await accepted.get()
        # A reply in many pieces (and the start of the next), then the rest and one more in
        # one piece.
        task = asyncio.create_task(link.request(b"q", _framer, 10.0))
        assert await reader.readexactly(1) == b"q"
        for byte in b"split\nne":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)
        assert await task == b"split\n"
        writer.write(b"xt\nlast\n")
        assert await link.read_frame(_framer, 10.0) == b"next\n"
        assert await link.read_frame(_framer, 10.0) == b"last\n"
        # Close while a reader waits: it fails at once; reopening gives a fresh connection.
        task = asyncio.create_task(link.read_frame(_framer, 30.0))
        await asyncio.sleep(0.01)
        old = link._protocol
        await link.close()
        with pytest.raises(LinkError, match="closed while a reply was awaited"):
            await asyncio.wait_for(task, 10.0)
        writer.close()
        await link.open()
        reader, writer = await accepted.get()
        # Late callbacks of the closed connection must not touch the new one.
        assert old is not None and old is not link._protocol
        old.eof_received()
        old.connection_lost(ConnectionResetError("late"))
        assert await asyncio.wait_for(_echo_once(link, reader, writer), 10.0) == b"PING\n"
        # The gateway drops the connection while a reader waits: a clear error, at once.
        task = asyncio.create_task(link.read_frame(_framer, 30.0))
        await asyncio.sleep(0.01)
        writer.close()
        with pytest.raises(LinkError, match="closed by the gateway"):
            await asyncio.wait_for(task, 10.0)
        with pytest.raises(LinkError, match="closed"):
            await link.write(b"x")
        await link.close()


async def _echo_once(
    link: StreamLink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bytes:
    request = asyncio.create_task(link.request(b"ping", _framer, 10.0))
    data = await reader.readexactly(4)
    writer.write(data.upper() + b"\n")
    return await request


async def test_tcp_write_to_a_gateway_that_takes_nothing_gives_up() -> None:
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)  # never reads

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        link = open_link(parse_link_url(f"tcp://127.0.0.1:{port}"), {})
        assert isinstance(link, TcpLink)
        link.write_timeout = 0.1
        await link.open()
        writer = await accepted.get()
        try:
            with pytest.raises(LinkError, match=r"did not take it within 0\.1 s"):
                for _ in range(64):  # more than the kernel's socket buffers hold
                    await link.write(bytes(1 << 20))
        finally:
            await link.close()
            writer.transport.abort()
