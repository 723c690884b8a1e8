"""Device side of the Daly BLE "D2" protocol: a register file answering function 0x03 reads."""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.model import Sample
from bmshost_daly import modbus
from bmshost_daly.pack import Pack
from bmshost_daly.sim_a5 import pack_state

VERSION = (b"T00K_321042_11".ljust(16, b"\x00") + b"H2.0_103R_309F9F").ljust(64, b"\x00")


class DalyD2Simulator(Simulator):
    kind = "stream"

    def __init__(
        self,
        cells: int = 16,
        sensors: int = 2,
        capacity: float = 100.0,
        soc: float = 60.0,
        current: float = 0.0,
        mosfet: int = 1,
    ) -> None:
        if cells > 32:
            raise ValueError("the D2 simulator models the 32-slot layout (cells ≤ 32)")
        self.pack = Pack(
            cells=cells, sensors=sensors, capacity_ah=capacity, soc=soc, current=current
        )
        self.has_mosfet_sensor = bool(mosfet)
        self._buf = bytearray()

    def tick(self, dt: float) -> None:
        self.pack.tick(dt)

    def registers(self) -> list[int]:
        p = self.pack
        regs = [0] * 0xC9
        cells = p.cell_voltages()
        for i, v in enumerate(cells):
            regs[i] = round(v * 1000)
        for i, t in enumerate(p.temperatures()):
            regs[0x20 + i] = round(t) + 40
        current = p.effective_current()
        regs[0x28] = round(p.voltage * 10)
        regs[0x29] = round(30000 + current * 10)  # D2 convention: above the offset = charging
        regs[0x2A] = round(p.soc * 10)
        regs[0x2B], regs[0x2C] = round(max(cells) * 1000), round(min(cells) * 1000)
        regs[0x2F] = 1 if current > 0 else 2 if current < 0 else 0
        regs[0x30] = round(p.remaining_ah * 10)
        regs[0x31], regs[0x32], regs[0x33] = p.cells, p.sensors, p.cycles
        regs[0x34] = 1 if p.balancer_enabled else 0
        regs[0x35], regs[0x36] = int(p.charge_fet), int(p.discharge_fet)
        regs[0x37] = round(sum(cells) / len(cells) * 1000)
        regs[0x38] = round((max(cells) - min(cells)) * 1000)
        regs[0x39] = abs(round(p.voltage * current))
        bits = sum(1 << i for i, on in enumerate(p.balancing()) if on)
        regs[0x3E], regs[0x3F] = bits & 0xFFFF, bits >> 16
        regs[0x40] = 30000
        regs[0x42] = round(p.mosfet_temperature) + 40 if self.has_mosfet_sensor else 0
        regs[0x43] = round(p.temperature) + 40
        regs[0x80] = round(p.capacity_ah * 10)
        for i in range(modbus.VERSION_COUNT):
            regs[0xA9 + i] = int.from_bytes(VERSION[2 * i : 2 * i + 2], "big")
        return regs

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while len(self._buf) >= 8:
            if self._buf[0] != modbus.DEVICE:
                del self._buf[0]
                continue
            frame = bytes(self._buf[:8])
            if modbus.crc16_modbus(frame[:6]) != int.from_bytes(frame[6:], "little"):
                del self._buf[0]  # not a request: resynchronise
                continue
            del self._buf[:8]
            out += self._answer(frame)
        return bytes(out)

    def _answer(self, frame: bytes) -> bytes:
        start = int.from_bytes(frame[2:4], "big")
        count = int.from_bytes(frame[4:6], "big")
        regs = self.registers()
        if frame[1] != modbus.READ:
            return modbus.with_crc(bytes((modbus.DEVICE, frame[1] | 0x80, 1)))
        if count == 0 or count > 0x7D or start + count > len(regs):
            return modbus.with_crc(bytes((modbus.DEVICE, modbus.READ | 0x80, 2)))
        data = b"".join(v.to_bytes(2, "big") for v in regs[start : start + count])
        return modbus.with_crc(bytes((modbus.DEVICE, modbus.READ, len(data))) + data)

    def state(self) -> Sample:
        truth = pack_state(self.pack)
        truth.cell_balancing = self.pack.balancing()
        truth.alarms = None  # the D2 alarm words are not decoded (no documented bit map)
        return truth
