"""Byte links over pyserial ports, raw TCP sockets and RFC 2217 gateways.

* ``serial:///dev/ttyUSB0?baud=9600&parity=N&stopbits=1`` (or just ``/dev/ttyUSB0``): a local
  port, opened exclusively, watched by the event loop for as long as it is open (no thread, no
  polling).
* ``tcp://host:port`` / ``socket://host:port``: an RS485-to-LAN gateway in raw mode (an asyncio
  protocol).

Both hand what arrives to ``PushedStreamLink``, which frames it in the loop's callback and wakes
the reader once per complete reply (see ``pushed.py``).
* ``rfc2217://host:port``: a gateway speaking RFC 2217 (pyserial's client, read in a worker
  thread because that client has no file descriptor to wait on).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
from collections.abc import Mapping
from typing import Any

import serial

from bmshost.errors import ConfigError, LinkError
from bmshost.link import StreamLink
from bmshost.url import LinkUrl
from bmshost_transport_serial.pushed import PushedStreamLink

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD,
           "M": serial.PARITY_MARK, "S": serial.PARITY_SPACE}
_STOPBITS = {"1": serial.STOPBITS_ONE, "1.5": serial.STOPBITS_ONE_POINT_FIVE, "2": serial.STOPBITS_TWO}


def _settings(url: LinkUrl, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Port settings: the driver's defaults overridden by URL parameters; checked here."""
    merged: dict[str, Any] = {str(k): str(v) for k, v in defaults.items()}
    merged.update(url.params)
    try:
        baud = int(merged.get("baud", "9600"))
    except ValueError:
        raise ConfigError(f"{url.raw}: baud must be an integer") from None
    parity = str(merged.get("parity", "N")).upper()[:1]
    if parity not in _PARITY:
        raise ConfigError(f"{url.raw}: parity must be N, E, O, M or S")
    stopbits = str(merged.get("stopbits", "1"))
    if stopbits not in _STOPBITS:
        raise ConfigError(f"{url.raw}: stopbits must be 1, 1.5 or 2")
    return {"baudrate": baud, "parity": _PARITY[parity], "stopbits": _STOPBITS[stopbits]}


def _explain_os_error(port: str, exc: BaseException) -> str:
    err = getattr(exc, "errno", None)
    if err == errno.ENOENT:
        return f"{port}: no such device (is the adapter plugged in? check `ls /dev/serial/by-id`)"
    if err in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return f"{port}: port is busy (another program, e.g. serial-starter or a getty, has it open)"
    if err == errno.EACCES:
        return f"{port}: permission denied (add the user to the dialout group)"
    text = str(exc)
    if "exclusively lock" in text or "Resource temporarily unavailable" in text:
        return f"{port}: port is busy (another program has it open)"
    if "No such file" in text or ("could not open port" in text and "[Errno 2]" in text):
        return f"{port}: no such device"
    return f"{port}: cannot open ({text})"


class SerialLink(PushedStreamLink):
    """A local serial port, watched by the event loop for as long as it is open.

    pyserial opens and configures the port (settings, exclusive lock, non-blocking descriptor);
    reads and writes then go straight to the descriptor: the loop's reader callback reads what
    arrived and hands it to ``PushedStreamLink`` (which frames it for the waiting reader), and a
    request is one ``os.write`` (pyserial's ``write`` adds a ``select`` and its timeout objects
    to every call). Only a write the port cannot take at once waits, for ``write_timeout`` s.
    """

    write_timeout = 1.0

    def __init__(self, url: LinkUrl, params: Mapping[str, Any]) -> None:
        super().__init__(url)
        self.path = url.target if url.target.startswith("/") or url.scheme == "serial" else url.raw
        self.settings = _settings(url, params)
        self._port: serial.Serial | None = None
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None  # watching self._fd for reading
        self._write_waiter: asyncio.Future[None] | None = None

    @property
    def description(self) -> str:
        return f"Serial {self.path}"

    async def open(self) -> None:
        if self._port is not None:
            return
        try:
            port = serial.Serial(self.path, timeout=0, exclusive=True, **self.settings)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(_explain_os_error(self.path, exc)) from None
        loop = asyncio.get_running_loop()
        fd = port.fileno()
        self._start_receiving()
        try:
            loop.add_reader(fd, self._on_readable)
        except (OSError, ValueError) as exc:  # a descriptor the loop cannot watch
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
            raise LinkError(f"{self.description}: cannot watch the port ({exc})") from None
        self._port, self._fd, self._loop = port, fd, loop

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        self._unwatch()
        reason = f"{self.description}: port closed while a reply was awaited"
        self._stop_receiving(reason)
        _wake(self._write_waiter)
        self._fd = -1
        try:
            port.close()
        except (serial.SerialException, OSError):
            pass

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def _unwatch(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):  # loop already closed
                loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        """The loop's reader callback: take what the driver has (up to its buffer's size)."""
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return  # woken for nothing (another reader of the tty took it)
        except OSError as exc:  # EIO once a USB adapter is unplugged
            self._read_failed(str(exc))
            return
        if data:
            self._received(data)
        else:  # readable but empty: the tty hung up (adapter gone)
            self._read_failed("the device reports end of file")

    def _read_failed(self, why: str) -> None:
        self._unwatch()  # a dead descriptor stays readable: do not spin the loop on it
        self._receive_failed(f"{self.description}: read failed ({why}); device unplugged?")

    async def _write(self, data: bytes) -> None:
        if self._port is None:
            raise LinkError(f"{self.description}: not open")
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise LinkError(f"{self.description}: write failed ({exc})") from None
        if sent < len(data):  # the port's output buffer is full: wait for room
            await self._write_rest(memoryview(data)[sent:])

    async def _write_rest(self, rest: memoryview) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout
        while rest:
            fd = self._fd
            waiter: asyncio.Future[None] = loop.create_future()
            self._write_waiter = waiter
            loop.add_writer(fd, _wake, waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise LinkError(
                    f"{self.description}: write failed (the port did not take it within "
                    f"{self.write_timeout:g} s; flow control or a stuck adapter?)"
                ) from None
            finally:
                self._write_waiter = None
                with contextlib.suppress(RuntimeError, ValueError, OSError):
                    loop.remove_writer(fd)
            if self._port is None:
                raise LinkError(f"{self.description}: port closed while writing")
            try:
                rest = rest[os.write(fd, rest) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise LinkError(f"{self.description}: write failed ({exc})") from None

    def discard_input(self) -> None:
        super().discard_input()
        if self._port is not None:
            # What the driver holds but the loop has not delivered yet is stale too.
            with contextlib.suppress(termios.error, OSError):
                termios.tcflush(self._fd, termios.TCIFLUSH)


class _GatewayProtocol(asyncio.BufferedProtocol):
    """Receives a TCP gateway's bytes into one reused buffer and hands them to its link (a
    plain ``Protocol`` would make asyncio allocate a 256 KiB buffer for every receive)."""

    def __init__(self, link: TcpLink) -> None:
        self.link = link
        self.buffer = bytearray(4096)
        self.view = memoryview(self.buffer)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.paused: asyncio.Future[None] | None = None  # set while the transport's buffer is full

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if self.link._protocol is self:
            self.link._received(bytes(self.view[:nbytes]))

    def eof_received(self) -> bool:
        self.link._gateway_gone(self, None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._gateway_gone(self, exc)
        _wake(self.paused)
        _wake(self.closed)

    def pause_writing(self) -> None:
        if self.paused is None:
            self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        paused, self.paused = self.paused, None
        _wake(paused)


class TcpLink(PushedStreamLink):
    """Raw TCP to an RS485/serial gateway (an asyncio protocol; bytes framed as they arrive)."""

    write_timeout = 5.0

    def __init__(self, url: LinkUrl, params: Mapping[str, Any]) -> None:
        super().__init__(url)
        host, sep, port = url.target.rstrip("/").rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"{url.raw}: expected tcp://HOST:PORT")
        self.host, self.port = host.strip("[]"), int(port)
        self.connect_timeout = url.float_param("connect_timeout", 5.0)
        self._transport: asyncio.Transport | None = None
        self._protocol: _GatewayProtocol | None = None

    @property
    def description(self) -> str:
        return f"TCP {self.host}:{self.port}"

    async def open(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        protocol = _GatewayProtocol(self)
        self._start_receiving()
        self._protocol = protocol  # before connecting: bytes may follow the handshake at once
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: protocol, self.host, self.port), self.connect_timeout
            )
        except TimeoutError:
            self._protocol = None
            raise LinkError(f"{self.description}: connection timed out") from None
        except OSError as exc:
            self._protocol = None
            raise LinkError(f"{self.description}: cannot connect ({exc.strerror or exc})") from None
        except BaseException:
            self._protocol = None
            raise
        self._transport = transport

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        protocol, self._protocol = self._protocol, None
        if transport is None or protocol is None:
            return
        self._stop_receiving(f"{self.description}: link closed while a reply was awaited")
        if transport.get_write_buffer_size():
            transport.abort()  # requests the gateway never took are of no use any more
        else:
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(protocol.closed), 1.0)
        except TimeoutError:
            transport.abort()

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def _gateway_gone(self, protocol: _GatewayProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return  # an earlier connection of this link, closed on purpose
        if exc is None:
            self._receive_failed(f"{self.description}: connection closed by the gateway")
        else:
            self._receive_failed(f"{self.description}: read failed ({exc})")

    async def _write(self, data: bytes) -> None:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            raise LinkError(f"{self.description}: not open")
        if transport.is_closing():
            raise LinkError(self._failure or f"{self.description}: connection closed")
        transport.write(data)
        paused = protocol.paused
        if paused is None:
            return
        try:  # the gateway does not take our bytes: wait, as StreamWriter.drain would
            await asyncio.wait_for(asyncio.shield(paused), self.write_timeout)
        except TimeoutError:
            raise LinkError(
                f"{self.description}: write failed (the gateway did not take it within "
                f"{self.write_timeout:g} s)"
            ) from None
        if transport.is_closing():
            raise LinkError(self._failure or f"{self.description}: connection closed")


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Rfc2217Link(StreamLink):
    """An RFC 2217 gateway through pyserial's client, with reads in a worker thread."""

    def __init__(self, url: LinkUrl, params: Mapping[str, Any]) -> None:
        super().__init__(url)
        self.settings = _settings(url, params)
        self._port: Any = None

    @property
    def description(self) -> str:
        return f"RFC2217 {self.url.target}"

    async def open(self) -> None:
        if self._port is not None:
            return
        target = "rfc2217://" + self.url.target
        try:
            self._port = await asyncio.to_thread(
                serial.serial_for_url, target, timeout=0.05, **self.settings
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"{self.description}: cannot open ({exc})") from None

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                await asyncio.to_thread(port.close)
            except (serial.SerialException, OSError):
                pass

    @property
    def is_open(self) -> bool:
        return self._port is not None

    async def _write(self, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._port.write, data)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.description}: write failed ({exc})") from None

    async def _read(self, timeout: float) -> bytes:
        port = self._port

        def blocking() -> bytes:
            port.timeout = max(0.01, timeout)
            return bytes(port.read(max(1, port.in_waiting)))

        try:
            return await asyncio.to_thread(blocking)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.description}: read failed ({exc})") from None


def open_link(url: LinkUrl, params: Mapping[str, Any] | None = None) -> StreamLink:
    """Transport factory for the ``serial``, ``tcp``, ``socket`` and ``rfc2217`` schemes."""
    params = params or {}
    if url.scheme == "serial":
        if not url.target:
            raise ConfigError(f"{url.raw}: no device path")
        return SerialLink(url, params)
    if url.scheme in ("tcp", "socket"):
        return TcpLink(url, params)
    if url.scheme == "rfc2217":
        return Rfc2217Link(url, params)
    raise ConfigError(f"{url.raw}: scheme {url.scheme!r} is not served by the serial transport")


__all__ = ["Rfc2217Link", "SerialLink", "TcpLink", "open_link"]
