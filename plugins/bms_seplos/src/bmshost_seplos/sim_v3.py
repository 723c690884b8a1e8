"""Device side of Seplos v3 Modbus RTU: packs at addresses 0..15 answering 0x04/0x01 reads.

Each pack exposes PIA, PIB, PIC, SPA and VIA; unknown blocks get exception 2 (illegal data
address) like the real BMS does for blocks it does not implement.
"""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.model import Sample
from bmshost_seplos import modbus_v3 as mb
from bmshost_seplos.pack import Pack
from bmshost_seplos.sim_v2 import pack_state, parse_addresses
from bmshost_seplos.v2_fields import KELVIN


def _k(celsius: float) -> int:
    return round(celsius * 10 + KELVIN)


def _text(text: str, regs: int) -> list[int]:
    raw = text.encode().ljust(regs * 2, b"\x00")[: regs * 2]
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def input_registers(pack: Pack, address: int) -> dict[int, list[int]]:
    """Register blocks by base address."""
    cells = pack.cell_voltages()
    temps = pack.temperatures()
    current = round(pack.effective_current() * 100) & 0xFFFF
    pia = [
        round(pack.voltage * 100),
        current,
        round(pack.remaining_ah * 100),
        round(pack.capacity_ah * 100),
        213,
        round(pack.soc * 10),
        round(pack.soh * 10),
        pack.cycles,
        round(sum(cells) / len(cells) * 1000),
        _k(pack.temperature),
        round(max(cells) * 1000),
        round(min(cells) * 1000),
        _k(max(temps)),
        _k(min(temps)),
        0,
        round(pack.discharge_limit),
        round(pack.charge_limit),
        0,
    ]
    pib = [round(v * 1000) for v in cells] + [0] * (16 - len(cells))
    pib += [_k(t) for t in temps] + [0] * (4 - len(temps)) + [0] * 4
    pib += [_k(pack.ambient), _k(pack.mosfet_temperature)]
    spa = [len(temps), pack.cells]
    via = (
        _text("XZH-ElecTech Co.,Ltd", 10)
        + _text("SP16S020", 10)
        + _text("15", 1)
        + _text(f"SIMBMS{address:04d}", 15)
        + _text(f"SIMPACK{address:04d}", 15)
    )
    return {mb.PIA: pia, mb.PIB: pib, mb.SPA: spa, mb.VIA: via}


def coils(pack: Pack) -> bytes:
    """PIC 0x1200..0x128F as 18 bytes."""
    data = bytearray(18)
    bits = sum(1 << i for i, on in enumerate(pack.balancing()) if on)
    data[6], data[7] = bits & 0xFF, bits >> 8
    current = pack.effective_current()
    data[8] = 0x02 if current > 0 else 0x01 if current < 0 else 0x10
    data[9] = (0x02 if pack.high_cell_trip else 0) | (0x08 if pack.low_cell_trip else 0)
    data[15] = (
        (0x01 if pack.discharge_fet else 0)
        | (0x02 if pack.charge_fet else 0)
        | (0x08 if pack.heater else 0)
    )
    return bytes(data)


class SeplosV3Simulator(Simulator):
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

    @property
    def pack(self) -> Pack:
        return next(iter(self.packs.values()))

    def tick(self, dt: float) -> None:
        for pack in self.packs.values():
            pack.tick(dt)

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while len(self._buf) >= 8:
            frame = bytes(self._buf[:8])
            if mb.crc16_modbus(frame[:6]) != int.from_bytes(frame[6:], "little"):
                del self._buf[0]  # not a request start: resynchronise
                continue
            del self._buf[:8]
            pack = self.packs.get(frame[0])
            if pack is not None:
                out += self._answer(pack, frame)
        return bytes(out)

    def _answer(self, pack: Pack, frame: bytes) -> bytes:
        device, func = frame[0], frame[1]
        start = int.from_bytes(frame[2:4], "big")
        count = int.from_bytes(frame[4:6], "big")

        def error(code: int) -> bytes:
            return mb.with_crc(bytes((device, func | 0x80, code)))

        if func == mb.READ_INPUTS:
            # A read must start at a block's base and stay inside it, as on the real BMS.
            block = input_registers(pack, device).get(start)
            if block is None or count == 0 or count > len(block):
                return error(2)
            data = b"".join(v.to_bytes(2, "big") for v in block[:count])
        elif func == mb.READ_COILS:
            if start != mb.PIC or count == 0 or count > mb.PIC_COUNT or count % 8:
                return error(2)
            data = coils(pack)[: count // 8]
        else:
            return error(1)
        return mb.with_crc(bytes((device, func, len(data))) + data)

    def state(self) -> Sample:
        return pack_state(self.pack, next(iter(self.packs)))

    def states(self) -> dict[int, Sample]:
        return {a: pack_state(p, a) for a, p in self.packs.items()}
