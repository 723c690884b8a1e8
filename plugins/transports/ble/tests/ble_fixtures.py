"""Shared helpers for the BLE transport tests: a tiny framed echo simulator and a fake clock."""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.model import Sample
from bmshost.url import parse_link_url
from bmshost_transport_ble.link import BleStreamLink, open_ble_link
from bmshost_transport_ble.manager import BackoffPolicy, ConnectionManager
from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt

ADDR = "A4:C1:38:00:00:01"
DEFAULTS = {"notify_uuid": "ff01", "write_uuid": "ff02", "service_uuid": "ff00"}


class EchoSimulator(Simulator):
    """Request ``AA len payload`` → reply ``AB len' payload*3`` (long enough to be chunked)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.requests = 0

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while len(self._buf) >= 2:
            start = self._buf.find(0xAA)
            if start < 0:
                self._buf.clear()
                break
            del self._buf[:start]
            if len(self._buf) < 2 or len(self._buf) < 2 + self._buf[1]:
                break
            payload = bytes(self._buf[2 : 2 + self._buf[1]])
            del self._buf[: 2 + len(payload)]
            self.requests += 1
            body = payload * 3
            out += bytes((0xAB, len(body))) + body
        return bytes(out)

    def state(self) -> Sample:
        return Sample()


def echo_framer(buf: bytes) -> tuple[bytes | None, int]:
    start = buf.find(0xAB)
    if start < 0:
        return None, len(buf)
    if len(buf) - start < 2 or len(buf) - start < 2 + buf[start + 1]:
        return None, start
    end = start + 2 + buf[start + 1]
    return bytes(buf[start:end]), end


def request(payload: bytes) -> bytes:
    return bytes((0xAA, len(payload))) + payload


class FakeClock:
    """Injected time: ``sleep`` advances it instantly and records the delays."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def make_device(address: str = ADDR, **kwargs: object) -> StandinDevice:
    return StandinDevice(
        address=address,
        simulator=EchoSimulator(),
        services=gatt("ff00", "ff01", "ff02"),
        name="JBD-TEST",
        **kwargs,  # type: ignore[arg-type]
    )


def make_link(
    backend: SimulatedBleBackend,
    manager: ConnectionManager | None = None,
    address: str = ADDR,
    query: str = "",
    clock: FakeClock | None = None,
) -> BleStreamLink:
    clock = clock or FakeClock()
    manager = manager or ConnectionManager(
        "hci0",
        slots=4,
        clock=clock,
        sleep=clock.sleep,
        reset_adapter=backend.reset_adapter,
        policy=BackoffPolicy(jitter=0.0),
    )
    url = parse_link_url(f"ble://{address}{'?' + query if query else ''}")
    return open_ble_link(url, DEFAULTS, backend=backend, manager=manager)
