"""Device side of JK CAN: periodic broadcasts of a simulated pack (v1, or v1 + v2 frames).

``broadcast`` sends each frame whose period has elapsed in simulated time (the link advances
it with its clock): one frame per id per call, the newest value, like a receiver's cache.
"""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_jk import can_codec as c
from bmshost_jk.pack import Pack

PERIODS = {c.BATT_ST: 0.02, c.CELL_VOLT: 0.1, c.CELL_TEMP: 0.5, c.ALM_INFO: 1.0,
           c.BATT_ST2: 0.5, c.ALL_TEMP: 0.5, c.SWITCH_STATE: 0.5,
           **{i: 0.5 for i in c.CELL_FRAMES}}


def _u16(value: float) -> bytes:
    return max(0, min(0xFFFF, round(value))).to_bytes(2, "little")


class CanSimulator(Simulator):
    kind = "can"

    def __init__(self, cells: int = 16, capacity: float = 280.0, soc: float = 55.0,
                 current: float = 5.0, seed: int = 1, version: int = 2, address: int = 0) -> None:
        if version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        if cells > 24:
            raise ValueError("JK CAN v2 carries at most 24 cells")
        self.pack = Pack(cells=cells, capacity_ah=capacity, soc=soc, load_current=current,
                         seed=seed)
        self.version = version
        self.address = address
        self.time = 0.0
        self._sent: dict[int, float] = {}

    def tick(self, dt: float) -> None:
        self.time += dt
        self.pack.tick(dt)

    def frames(self) -> dict[int, bytes]:
        p = self.pack
        mv = p.cell_mv()
        hi, lo = mv.index(max(mv)), mv.index(min(mv))
        temps = [round(t) + c.TEMP_OFFSET for t in p.temperatures]
        alarm = (1 if p.ovp_tripped else 0) | ((1 if p.uvp_tripped else 0) << 2)
        out = {
            c.BATT_ST: _u16(p.voltage * 10) + _u16((p.current + c.CURRENT_OFFSET) * 10)
            + bytes((round(p.soc), 0)) + _u16(0),
            c.CELL_VOLT: _u16(mv[hi]) + bytes((hi + 1,)) + _u16(mv[lo]) + bytes((lo + 1, 0, 0)),
            c.CELL_TEMP: bytes((max(temps), temps.index(max(temps)) + 1, min(temps),
                                temps.index(min(temps)) + 1 if len(set(temps)) > 1 else 1,
                                round(sum(temps) / len(temps)), 0, 0, 0)),
            c.ALM_INFO: alarm.to_bytes(4, "little") + bytes(4),
        }
        if self.version == 2:
            out[c.BATT_ST2] = (_u16(p.remaining_ah * 10) + _u16(p.capacity_ah * 10)
                               + _u16(p.cycles * p.capacity_ah / 10) + _u16(p.cycles))
            out[c.ALL_TEMP] = bytes((2, temps[0], temps[1],
                                     round(p.mosfet_temperature) + c.TEMP_OFFSET, 0, 0, 0, 0))
            out[c.SWITCH_STATE] = bytes((p.charge_fet | p.discharge_fet << 1 | p.balancing << 2,
                                         0, 0, 0, 0, 0, 0, 0))
            padded = mv + [0] * (24 - len(mv))
            for n, ident in enumerate(c.CELL_FRAMES):
                if 4 * n >= len(mv):
                    break
                out[ident] = b"".join(v.to_bytes(2, "little") for v in padded[4 * n : 4 * n + 4])
        return out

    def broadcast(self) -> list[CanFrame]:
        if self.silent:
            return []
        due: list[CanFrame] = []
        for ident, data in self.frames().items():
            last = self._sent.get(ident)
            if last is None or self.time - last >= PERIODS[ident]:
                self._sent[ident] = self.time
                due.append(CanFrame(ident + self.address, data, ident > 0x7FF))
        return due

    def state(self) -> Sample:
        return self.pack.truth()
