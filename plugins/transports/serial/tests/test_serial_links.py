"""Serial, TCP and error paths of the serial transport, on real ptys and sockets."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Iterator

import pytest

from bmshost.errors import ConfigError, LinkError, LinkTimeout
from bmshost.url import parse_link_url
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
