"""JBD over Bluetooth LE: the serial frames over GATT, plus the optional password handshake.

The BMS exposes service ``ff00`` with notify ``ff01`` and write ``ff02`` (the DH04 board uses
``fff1``/``fff2``; the link picks whichever pair the device has). Replies arrive in notifications
of about 20 bytes and are reassembled with the serial framer (``codec.find_frame``).

Password (firmware with "app password" set): ``FF AA 15 <n> <ASCII password> <sum8>`` where the
sum covers ``15, n, password``; the BMS acks ``FF AA 15 01 00 16`` or refuses with ``... 01 01 17``.
It is sent after every (re)connection, before any read. Give it as ``ble://MAC?password=123456``.
"""

from __future__ import annotations

from bmshost.errors import FrameError, LinkError
from bmshost.link import StreamLink
from bmshost.model import Sample
from bmshost_jbd.session import JbdSession
from bmshost_jbd.simulator import JbdSimulator

AUTH_PREFIX = b"\xff\xaa"
CMD_PASSWORD = 0x15

def sum8(data: bytes) -> int:
    return sum(data) & 0xFF


def password_frame(password: str) -> bytes:
    """The password request; ``ValueError`` for a non-ASCII or over-long password."""
    try:
        raw = password.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("JBD password must be ASCII") from None
    if not 1 <= len(raw) <= 32:
        raise ValueError("JBD password must be 1..32 characters")
    body = bytes((CMD_PASSWORD, len(raw))) + raw
    return AUTH_PREFIX + body + bytes((sum8(body),))


def find_auth_frame(buf: bytes) -> tuple[bytes | None, int]:
    """Framer for ``FF AA cmd len data sum8`` replies; junk before ``FF AA`` is skipped."""
    start = buf.find(AUTH_PREFIX)
    if start < 0:
        keep = 1 if buf.endswith(b"\xff") else 0  # a split prefix: keep its first byte
        return None, len(buf) - keep
    if len(buf) - start < 4:
        return None, start
    total = buf[start + 3] + 5
    if len(buf) - start < total:
        return None, start
    return bytes(buf[start : start + total]), start + total


def parse_auth_reply(frame: bytes) -> bool:
    """True when the BMS accepted the password; ``FrameError`` for a malformed reply."""
    if len(frame) < 6 or not frame.startswith(AUTH_PREFIX):
        raise FrameError("JBD auth reply must start with FF AA and hold at least 6 bytes")
    if len(frame) != frame[3] + 5:
        raise FrameError(f"JBD auth reply length {len(frame)} does not match its length byte")
    if frame[-1] != sum8(frame[2:-1]):
        raise FrameError("JBD auth reply checksum mismatch")
    if frame[2] != CMD_PASSWORD or frame[3] != 1:
        raise FrameError(f"JBD auth reply for command 0x{frame[2]:02x}, expected 0x15")
    return frame[4] == 0


class JbdBleSession(JbdSession):
    """The serial session over a BLE stream link, with the password sent on every connection."""

    def __init__(self, ctx: object) -> None:
        super().__init__(ctx)  # type: ignore[arg-type]
        password = self.link.url.param("password")
        self._password = password_frame(password) if password else None
        self._hooked = False
        hooks = getattr(self.link, "on_connect", None)
        if self._password is not None and isinstance(hooks, list):
            hooks.append(self._authenticate)  # the BLE link calls it after every (re)connect
            self._hooked = True

    async def _authenticate(self, link: StreamLink) -> None:
        assert self._password is not None
        reply = await link.request(self._password, find_auth_frame, self.ctx.timeout)
        if not parse_auth_reply(reply):
            raise LinkError(f"{link.description}: the BMS refused the password")

    async def connect(self) -> Sample:
        if self._password is not None and not self._hooked:
            await self._authenticate(self._stream())  # links without connect hooks (sim:)
        return await super().connect()


class JbdBleSimulator(JbdSimulator):
    """The serial simulator plus the BLE password handshake (``password=`` option)."""

    def __init__(self, password: str | int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.password = None if password is None else str(password)
        self.authenticated = self.password is None
        self._pending = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        out = bytearray()
        while self._pending:
            auth = self._pending.find(AUTH_PREFIX)
            if auth < 0:
                out += self._serial(bytes(self._pending))
                self._pending.clear()
                break
            if auth > 0:
                out += self._serial(bytes(self._pending[:auth]))
                del self._pending[:auth]
                continue
            if len(self._pending) < 4 or len(self._pending) < self._pending[3] + 5:
                break  # wait for the rest of the auth frame
            frame = bytes(self._pending[: self._pending[3] + 5])
            del self._pending[: len(frame)]
            out += self._auth(frame)
        return bytes(out)

    def _serial(self, data: bytes) -> bytes:
        if not self.authenticated:
            return b""  # a locked BMS ignores requests (reads and writes) until the password
        return super().feed(data)

    def _auth(self, frame: bytes) -> bytes:
        if frame[2] != CMD_PASSWORD or frame[-1] != sum8(frame[2:-1]):
            return b""
        # Without a password set, the BMS accepts whatever a client sends.
        ok = self.password is None or frame[4:-1] == self.password.encode("ascii")
        self.authenticated = self.authenticated or ok
        body = bytes((CMD_PASSWORD, 1, 0 if ok else 1))
        return AUTH_PREFIX + body + bytes((sum8(body),))
