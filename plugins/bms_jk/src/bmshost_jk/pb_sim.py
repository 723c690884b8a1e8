"""Device side of the JK PB RS485 bus: one or more packs (DIP addresses 1..15) on one wire.

Each addressed pack answers a trigger with its record, a pad byte and the FC 0x10 acknowledge.
``echo`` prepends the request, as CH341 USB adapters do. A request to address 0 is ignored:
on a real bus it is not a valid slave address (0 makes a pack the bus master).
"""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_jk import pb_codec
from bmshost_jk.jk02_sim import cell_record, device_record, settings_record
from bmshost_jk.pack import Pack

MAX_BUFFER = 4096
PAD = b"\x00"


def parse_addresses(addresses: str | int | None, address: int) -> list[int]:
    if addresses is None or addresses == "":
        items = [address]
    elif isinstance(addresses, int):
        items = [addresses]
    else:
        items = [int(a) for a in str(addresses).replace(";", ",").split(",") if a.strip()]
    for a in items:
        pb_codec.check_address(a)
    return items


class PbSimulator(Simulator):
    kind = "stream"

    def __init__(self, cells: int = 16, capacity: float = 280.0, soc: float = 55.0,
                 current: float = 5.0, seed: int = 1, address: int = 1,
                 addresses: str | int | None = None, echo: bool | int = False,
                 firmware: str | float = "15.41", about: bool | int = True) -> None:
        self.packs: dict[int, Pack] = {}
        for i, a in enumerate(parse_addresses(addresses, address)):
            # Distinct packs: different SoC, drift and serial number per address.
            self.packs[a] = Pack(cells=cells, capacity_ah=capacity, soc=max(0.0, soc - 5 * i),
                                 load_current=current, seed=seed + a,
                                 serial_number=f"SIMPB{a:02d}")
        self.echo = bool(echo)
        self.firmware = str(firmware)  # sim: URLs turn 11.48 into a number
        self.about = bool(about)  # firmware >= 15.36 sometimes ignores the about trigger
        self.requests: list[tuple[int, int]] = []
        self._buf = bytearray()

    def tick(self, dt: float) -> None:
        for pack in self.packs.values():
            pack.tick(dt)

    def _record(self, address: int, register: int) -> bytes | None:
        pack = self.packs[address]
        if register == pb_codec.TRIGGER_STATUS:
            return cell_record(pack, 32)
        if register == pb_codec.TRIGGER_SETTINGS:
            return settings_record(pack, address)
        if register == pb_codec.TRIGGER_ABOUT and self.about:
            return device_record(pack, "JK_PB2A16S20P", self.firmware)
        return None

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        del self._buf[:-MAX_BUFFER]
        out = bytearray()
        while len(self._buf) >= 11:
            try:
                address, register = pb_codec.parse_trigger(bytes(self._buf[:11]))
            except FrameError:
                del self._buf[:1]  # resynchronise byte by byte, like a Modbus slave's timer
                continue
            request = bytes(self._buf[:11])
            del self._buf[:11]
            self.requests.append((address, register))
            if self.echo:
                out += request
            if address not in self.packs:
                continue
            record = self._record(address, register)
            if record is not None:
                out += record + PAD + pb_codec.build_ack(address, register)
        return b"" if self.silent else bytes(out)

    def state(self, address: int | None = None) -> Sample:
        a = next(iter(self.packs)) if address is None else address
        sample = self.packs[a].truth()
        sample.address = a
        return sample
