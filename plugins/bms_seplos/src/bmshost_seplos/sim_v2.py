"""Device side of Seplos v2 ASCII: one or several packs on one RS485 bus (DIP addresses 0..15).

A pack answers only frames whose ADR is its own address. The INFO payload builders are shared
with the BLE simulator (same layouts, different framing).
"""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos import ascii_v2
from bmshost_seplos.pack import Pack
from bmshost_seplos.v2_fields import KELVIN


def parse_addresses(addresses: str | int | None, address: int | None, default: int) -> list[int]:
    if addresses is None:
        return [address if address is not None else default]
    if isinstance(addresses, int):
        return [addresses]
    out = [int(a, 0) for a in str(addresses).replace(";", ",").split(",") if a.strip()]
    if not out or any(not 0 <= a <= 15 for a in out):
        raise ValueError("Seplos pack addresses must be 0..15")
    return out


def _u16(v: float) -> bytes:
    return (round(v) & 0xFFFF).to_bytes(2, "big")


def _k(celsius: float) -> bytes:
    return _u16(celsius * 10 + KELVIN)


def all_temperatures(pack: Pack) -> list[float]:
    return [*pack.temperatures(), pack.ambient, pack.mosfet_temperature]


def telemetry_info(pack: Pack, group: int, custom: int = 10) -> bytes:
    temps = all_temperatures(pack)
    out = bytes((0, group, pack.cells)) + b"".join(_u16(v * 1000) for v in pack.cell_voltages())
    out += bytes((len(temps),)) + b"".join(_k(t) for t in temps)
    out += _u16(pack.effective_current() * 100) + _u16(pack.voltage * 100)
    out += _u16(pack.remaining_ah * 100) + bytes((custom,))
    tail = [
        pack.capacity_ah * 100,
        pack.soc * 10,
        pack.capacity_ah * 100,
        pack.cycles,
        pack.soh * 10,
        pack.voltage * 100,
        0,
        0,
        0,
        0,
    ]
    return out + b"".join(_u16(v) for v in tail[:custom])


def events(pack: Pack) -> bytes:
    """The 20 event bytes of a 0x44 reply."""
    e = bytearray(20)
    e[1] = (0x02 if pack.high_cell_trip else 0) | (0x08 if pack.low_cell_trip else 0)
    e[6] = (
        (0x01 if pack.discharge_fet else 0)
        | (0x02 if pack.charge_fet else 0)
        | (0x08 if pack.heater else 0)
    )
    bits = sum(1 << i for i, on in enumerate(pack.balancing()) if on)
    e[7], e[8] = bits & 0xFF, bits >> 8 & 0xFF
    current = pack.effective_current()
    e[9] = 0x02 if current > 0 else 0x01 if current < 0 else 0x10
    return bytes(e)


def alarms_info(pack: Pack, group: int) -> bytes:
    temps = all_temperatures(pack)
    cell_alarm = bytes((2 if pack.high_cell_trip else 1 if pack.low_cell_trip else 0,)) * pack.cells
    return (
        bytes((0, group, pack.cells))
        + cell_alarm
        + bytes((len(temps),))
        + bytes(len(temps))
        + bytes((0, 0, 20))
        + events(pack)
    )


def manufacturer_info() -> bytes:
    return b"1101-SP15\x00" + bytes((1, 6)) + b"CANProtocol:Sofar".ljust(20, b"\x00")


class SeplosV2Simulator(Simulator):
    kind = "stream"

    def __init__(
        self,
        cells: int = 16,
        address: int | None = None,
        addresses: str | int | None = None,
        soc: float = 60.0,
        current: float = 0.0,
        capacity: float = 280.0,
    ) -> None:
        self.packs = {
            a: Pack(cells=cells, soc=soc, current=current, capacity_ah=capacity)
            for a in parse_addresses(addresses, address, 0)
        }
        self._buf = bytearray()
        self.groups: list[int] = []  # COMMAND_GROUP bytes seen (tests check the option)

    @property
    def pack(self) -> Pack:
        return next(iter(self.packs.values()))

    def tick(self, dt: float) -> None:
        for pack in self.packs.values():
            pack.tick(dt)

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            frame, used = ascii_v2.framer(bytes(self._buf))
            del self._buf[:used]
            if frame is None:
                return bytes(out)
            try:
                _, address, cid1, cid2, info = ascii_v2.parse_frame(frame)
            except FrameError:
                if address_of(frame) in self.packs:  # addressed to us but corrupt
                    out += ascii_v2.build_frame(address_of(frame) or 0, 0x02)
                continue
            pack = self.packs.get(address)
            if pack is None:
                continue  # another pack's request
            out += self._answer(pack, address, cid1, cid2, info)

    def _answer(self, pack: Pack, address: int, cid1: int, cid2: int, info: bytes) -> bytes:
        if cid1 != ascii_v2.CID1:
            return ascii_v2.build_frame(address, 0xE1)
        group = info[0] if info else address
        if cid2 == ascii_v2.TELEMETRY:
            self.groups.append(group)
            return ascii_v2.build_frame(address, 0x00, telemetry_info(pack, group))
        if cid2 == ascii_v2.ALARMS:
            self.groups.append(group)
            return ascii_v2.build_frame(address, 0x00, alarms_info(pack, group))
        if cid2 == ascii_v2.MANUFACTURER:
            return ascii_v2.build_frame(address, 0x00, manufacturer_info())
        return ascii_v2.build_frame(address, 0x04)  # CID2 invalid

    def state(self) -> Sample:
        return pack_state(self.pack)

    def states(self) -> dict[int, Sample]:
        return {a: pack_state(p, a) for a, p in self.packs.items()}


def address_of(frame: bytes) -> int | None:
    try:
        return int(frame[3:5].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        return None


def pack_state(pack: Pack, address: int | None = None) -> Sample:
    return Sample(
        voltage=pack.voltage,
        current=pack.effective_current(),
        soc=round(pack.soc, 1),
        soh=pack.soh,
        capacity_ah=pack.capacity_ah,
        remaining_ah=round(pack.remaining_ah, 2),
        cycles=pack.cycles,
        cell_voltages=pack.cell_voltages(),
        cell_balancing=pack.balancing(),
        temperatures=pack.temperatures(),
        mosfet_temperature=pack.mosfet_temperature,
        charge_fet=pack.charge_fet,
        discharge_fet=pack.discharge_fet,
        heating=pack.heater,
        bms_charge_current_limit=pack.charge_limit,
        bms_discharge_current_limit=pack.discharge_limit,
        alarms={
            "high_cell_voltage": 2 if pack.high_cell_trip else 0,
            "low_cell_voltage": 2 if pack.low_cell_trip else 0,
        },
        address=address,
    )
