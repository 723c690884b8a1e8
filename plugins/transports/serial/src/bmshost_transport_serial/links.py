"""Byte links over pyserial ports, raw TCP sockets and RFC 2217 gateways.

* ``serial:///dev/ttyUSB0?baud=9600&parity=N&stopbits=1`` (or just ``/dev/ttyUSB0``): a local
  port, opened exclusively, read through the event loop's reader (no thread, no polling).
* ``tcp://host:port`` / ``socket://host:port``: an RS485-to-LAN gateway in raw mode (asyncio
  streams).
* ``rfc2217://host:port``: a gateway speaking RFC 2217 (pyserial's client, read in a worker
  thread because that client has no file descriptor to wait on).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping
from typing import Any

import serial

from bmshost.errors import ConfigError, LinkError
from bmshost.link import StreamLink
from bmshost.url import LinkUrl

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


class SerialLink(StreamLink):
    """A local serial port read through ``loop.add_reader``."""

    def __init__(self, url: LinkUrl, params: Mapping[str, Any]) -> None:
        super().__init__(url)
        self.path = url.target if url.target.startswith("/") or url.scheme == "serial" else url.raw
        self.settings = _settings(url, params)
        self._port: serial.Serial | None = None
        self._data = asyncio.Event()

    @property
    def description(self) -> str:
        return f"Serial {self.path}"

    async def open(self) -> None:
        if self._port is not None:
            return
        try:
            port = serial.Serial(self.path, timeout=0, write_timeout=1.0, exclusive=True, **self.settings)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(_explain_os_error(self.path, exc)) from None
        self._port = port
        asyncio.get_running_loop().add_reader(port.fileno(), self._data.set)

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        try:
            asyncio.get_running_loop().remove_reader(port.fileno())
        except (RuntimeError, ValueError, OSError):
            pass
        try:
            port.close()
        except (serial.SerialException, OSError):
            pass

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def _require(self) -> serial.Serial:
        if self._port is None:
            raise LinkError(f"{self.description}: not open")
        return self._port

    async def _write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.description}: write failed ({exc})") from None

    async def _read(self, timeout: float) -> bytes:
        port = self._require()
        self._data.clear()
        chunk = self._read_available(port)
        if chunk:
            return chunk
        try:
            await asyncio.wait_for(self._data.wait(), timeout)
        except TimeoutError:
            return b""
        return self._read_available(port)

    def _read_available(self, port: serial.Serial) -> bytes:
        try:
            n = port.in_waiting
            return bytes(port.read(n)) if n else b""
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.description}: read failed ({exc}); device unplugged?") from None

    def discard_input(self) -> None:
        super().discard_input()
        if self._port is not None:
            try:
                self._port.reset_input_buffer()
            except (serial.SerialException, OSError):
                pass


class TcpLink(StreamLink):
    """Raw TCP to an RS485/serial gateway."""

    def __init__(self, url: LinkUrl, params: Mapping[str, Any]) -> None:
        super().__init__(url)
        host, sep, port = url.target.rstrip("/").rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"{url.raw}: expected tcp://HOST:PORT")
        self.host, self.port = host.strip("[]"), int(port)
        self.connect_timeout = url.float_param("connect_timeout", 5.0)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def description(self) -> str:
        return f"TCP {self.host}:{self.port}"

    async def open(self) -> None:
        if self._writer is not None:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except TimeoutError:
            raise LinkError(f"{self.description}: connection timed out") from None
        except OSError as exc:
            raise LinkError(f"{self.description}: cannot connect ({exc.strerror or exc})") from None

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, TimeoutError):
                pass

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def _write(self, data: bytes) -> None:
        if self._writer is None:
            raise LinkError(f"{self.description}: not open")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise LinkError(f"{self.description}: write failed ({exc})") from None

    async def _read(self, timeout: float) -> bytes:
        if self._reader is None:
            raise LinkError(f"{self.description}: not open")
        try:
            data = await asyncio.wait_for(self._reader.read(4096), timeout)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise LinkError(f"{self.description}: read failed ({exc})") from None
        if not data:
            raise LinkError(f"{self.description}: connection closed by the gateway")
        return data


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
