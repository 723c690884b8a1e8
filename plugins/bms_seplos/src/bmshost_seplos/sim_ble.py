"""Device side of Seplos v2 over BLE (binary 7E frames with CRC-16/XMODEM); ignores ADR."""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos import binary_v2
from bmshost_seplos.pack import Pack
from bmshost_seplos.sim_v2 import events, manufacturer_info, pack_state, telemetry_info

REPLY_VERSION = 0x14


def parallel_info(pack: Pack) -> bytes:
    """0x62: 38 bytes of parallel data, the switch byte, an event count and the events."""
    e = events(pack)
    head = bytearray(binary_v2.SWITCH_OFFSET)
    head[2] = pack.cells
    return bytes(head) + bytes((e[6], 8)) + e[1:9]


class SeplosBleSimulator(Simulator):
    kind = "stream"

    def __init__(
        self,
        cells: int = 16,
        soc: float = 60.0,
        current: float = 0.0,
        capacity: float = 280.0,
    ) -> None:
        self.pack = Pack(cells=cells, soc=soc, current=current, capacity_ah=capacity)
        self._buf = bytearray()

    def tick(self, dt: float) -> None:
        self.pack.tick(dt)

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            frame, used = binary_v2.framer(bytes(self._buf))
            del self._buf[:used]
            if frame is None:
                return bytes(out)
            try:
                _, _, cid1, command, _ = binary_v2.parse_frame(frame)
            except FrameError:
                continue
            if cid1 == binary_v2.CID1:
                out += self._answer(command)

    def _answer(self, command: int) -> bytes:
        if command == binary_v2.TELEMETRY:
            info = telemetry_info(self.pack, 0, custom=6) + bytes(39)
        elif command == binary_v2.PARALLEL:
            info = parallel_info(self.pack)
        elif command == binary_v2.MANUFACTURER:
            info = manufacturer_info()
        else:
            return binary_v2.build_frame(REPLY_VERSION, 0, command, 0x04)
        return binary_v2.build_frame(REPLY_VERSION, 0, command, 0x00, info)

    def state(self) -> Sample:
        truth = pack_state(self.pack)
        truth.cell_balancing = None  # not carried by the BLE messages
        truth.alarms = None
        truth.bms_charge_current_limit = truth.bms_discharge_current_limit = None
        return truth
