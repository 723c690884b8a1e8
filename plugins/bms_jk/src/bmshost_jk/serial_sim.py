"""Device side of the JK 0x4E57 protocol: answers read-all requests from a simulated pack."""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_jk import serial_codec as codec
from bmshost_jk.pack import Pack
from bmshost_jk.serial_codec import TagValue

MAX_BUFFER = 4096


class SerialSimulator(Simulator):
    kind = "stream"

    def __init__(self, cells: int = 16, capacity: float = 280.0, soc: float = 55.0,
                 current: float = 5.0, seed: int = 1, address: int = 0,
                 firmware: str | float = "11.XW_S11.261__") -> None:
        self.pack = Pack(cells=cells, capacity_ah=capacity, soc=soc, load_current=current,
                         seed=seed)
        self.firmware = str(firmware)  # sim: URLs turn 11.48 into a number
        self._buf = bytearray()
        self.requests = 0  # read-all requests answered (tests count them)

    def tick(self, dt: float) -> None:
        self.pack.tick(dt)

    def tags(self) -> dict[int, TagValue]:
        p = self.pack
        warnings = (p.ovp_tripped << 10) | (p.uvp_tripped << 11)
        status = p.charge_fet | (p.discharge_fet << 1) | (p.balancing << 2) | 0b1000
        return {
            codec.CELLS: p.cell_mv(),
            0x80: codec.encode_temperature(p.mosfet_temperature),
            0x81: codec.encode_temperature(p.temperatures[0]),
            0x82: codec.encode_temperature(p.temperatures[1]),
            0x83: round(p.voltage * 100),
            0x84: codec.encode_current(p.current),
            0x85: round(p.soc),
            0x86: 2,
            0x87: p.cycles,
            0x89: p.cycles * round(p.capacity_ah),
            0x8A: p.cells,
            0x8B: warnings,
            0x8C: status,
            0x8E: round(p.cell_ovp_mv * p.cells / 10),
            0x8F: round(p.cell_uvp_mv * p.cells / 10),
            0x90: p.cell_ovp_mv,
            0x91: p.cell_ovpr_mv,
            0x93: p.cell_uvp_mv,
            0x94: p.cell_uvpr_mv,
            0x97: round(p.max_discharge_current),
            0x99: round(p.max_charge_current),
            0x9B: p.balance_start_mv,
            0x9C: p.balance_trigger_mv,
            0x9D: int(p.balancer_switch),
            0xA9: p.cells,
            0xAA: round(p.capacity_ah),
            0xAB: int(p.charge_switch),
            0xAC: int(p.discharge_switch),
            0xAF: 0,
            0xB4: "Input Us",
            0xB5: "2406",
            0xB6: int(p.elapsed // 60),
            0xB7: self.firmware,
            0xBA: p.serial_number,
            0xC0: 1,
        }

    def reply(self) -> bytes:
        data = codec.encode_tlv(self.tags())
        return codec.build_frame(codec.CMD_READ_ALL, data, source=0x00, frame_type=0x01)

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        del self._buf[:-MAX_BUFFER]
        out = bytearray()
        while True:
            frame, used = codec.framer(bytes(self._buf))
            del self._buf[:used]
            if frame is None:
                break
            try:
                codec.validate(frame)
            except FrameError:
                continue  # a real BMS ignores a corrupt request
            if frame[8] == codec.CMD_READ_ALL and frame[10] == 0x00:
                self.requests += 1
                out += self.reply()
        return b"" if self.silent else bytes(out)

    def state(self) -> Sample:
        return self.pack.truth()
