"""Simulated JBD UP16S packs on one RS485 chain (address 1 = master, relays the slaves).

Each pack has state (SoC integrates the current, cells follow it, the balancer works on the
highest cells); the master's pack status carries the bank's summed limits and answers 0x45 with
its own. ``addresses="1,2,3"`` builds a chain; a request for an absent address gets no answer.
"""

from __future__ import annotations

import math
import struct

import attrs

from bmshost.driver import Simulator
from bmshost.model import Sample
from bmshost_jbd import up16s_codec as codec


@attrs.define
class Pack:
    address: int
    cells: int
    capacity: float  # Ah
    soc: float
    current: float  # A, + = charging
    cycles: int = 5
    charge_fet: bool = True
    discharge_fet: bool = True
    ccl: float = 100.0  # A, this pack's own limits
    dcl: float = 100.0
    temps: list[float] = attrs.field(factory=lambda: [21.0, 21.5, 22.0, 21.2])
    faults: int = 0
    warnings: int = 0

    def cell_voltages(self) -> list[float]:
        base = 3.20 + 0.15 * self.soc / 100 + 0.0005 * self.current
        return [
            round(base + 0.006 * math.sin(i * 1.3 + self.address), 3) for i in range(self.cells)
        ]

    def balance_bits(self) -> int:
        cells = self.cell_voltages()
        if max(cells) - min(cells) < 0.005 or self.soc < 50:
            return 0
        top = max(cells)
        return sum(1 << i for i, v in enumerate(cells) if v >= top - 0.002)


class Up16sSimulator(Simulator):
    kind = "stream"

    def __init__(
        self,
        addresses: str | int = "1",
        cells: int = 16,
        capacity: float = 100.0,
        soc: float = 60.0,
        current: float = 8.0,
        address: int | None = None,
    ) -> None:
        if address is not None:
            addresses = str(address)
        wanted = sorted({int(a) for a in str(addresses).split(",") if str(a).strip()})
        if not wanted or not all(1 <= a <= 16 for a in wanted) or not 1 <= cells <= 32:
            raise ValueError("addresses must be 1..16 and cells 1..32")
        self.packs = {
            a: Pack(a, cells, float(capacity), float(soc) + 3 * i, float(current))
            for i, a in enumerate(wanted)
        }
        self._buf = bytearray()
        self.requests = 0

    # -- physics -------------------------------------------------------------------------------

    def tick(self, dt: float) -> None:
        for pack in self.packs.values():
            flowing = pack.current
            if (flowing > 0 and not pack.charge_fet) or (flowing < 0 and not pack.discharge_fet):
                flowing = 0.0
            pack.soc = min(100.0, max(0.0, pack.soc + flowing * dt / 3600 / pack.capacity * 100))
            if (pack.soc >= 99.5 and pack.current > 0) or (pack.soc <= 10 and pack.current < 0):
                pack.current = -pack.current

    # -- protocol ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            frame, used = codec.find_frame(bytes(self._buf))
            del self._buf[:used]
            if frame is None:
                break
            self.requests += 1
            out += self._answer(frame)
        return bytes(out)

    def _answer(self, frame: bytes) -> bytes:
        address, function, start, payload = codec.split(frame)
        end = struct.unpack_from(">H", frame, 4)[0]
        pack = self.packs.get(address)
        if pack is None:
            return b""
        if function == codec.OWN_STATUS:
            if address != 1:
                return b""  # only the master, on a direct link
            body = bytearray(100)
            struct.pack_into(">HH", body, 96, round(pack.ccl * 10), round(pack.dcl * 10))
            return codec.build(address, function, start, end, bytes(body))
        if function == codec.WRITE:
            if (
                (start, end) == codec.SET_SOC
                and payload[:4] == codec.SOC_MAGIC
                and len(payload) == 6
            ):
                pack.soc = struct.unpack_from(">H", payload, 4)[0] / 100
                return codec.build(address, function, start, end)
            return b""
        blocks = {
            codec.PACK_STATUS[0]: self._status,
            codec.PACK_PARAMS_1[0]: self._params_1,
            codec.PACK_PARAMS_2[0]: self._params_2,
            codec.PRODUCT_INFO[0]: self._product,
        }
        make = blocks.get(start)
        return codec.build(address, function, start, end, make(pack)) if make else b""

    def _status(self, pack: Pack) -> bytes:
        cells = pack.cell_voltages()
        mv = [round(v * 1000) for v in cells]
        relayed = pack.address != 1  # the master relays slaves with coarser SoC and firmware
        soc = round(pack.soc) * 100 if relayed else round(pack.soc * 100)
        ccl = sum(p.ccl for p in self.packs.values()) if not relayed else pack.ccl
        dcl = sum(p.dcl for p in self.packs.values()) if not relayed else pack.dcl
        current = (
            pack.current
            if (pack.current > 0 and pack.charge_fet) or (pack.current < 0 and pack.discharge_fet)
            else 0.0
        )
        temps = [round(t * 10) + 500 for t in pack.temps]
        head = struct.pack(
            ">HHIHHHHHHHHIIHHH",
            round(sum(cells) * 100),
            0,
            round(current * 100) + codec.CURRENT_OFFSET,
            soc,
            round(pack.capacity * pack.soc),
            round(pack.capacity * 100),
            round(pack.capacity * 100),
            round(23.0 * 10) + 500,
            round(24.0 * 10) + 500,
            1,
            100,
            pack.faults,
            pack.warnings,
            (1 if pack.discharge_fet else 0) | (2 if pack.charge_fet else 0),
            0,
            pack.cycles,
        )
        extremes = struct.pack(
            ">15H",
            mv.index(max(mv)) + 1,
            max(mv),
            mv.index(min(mv)) + 1,
            min(mv),
            round(sum(mv) / len(mv)),
            temps.index(max(temps)) + 1,
            max(temps),
            temps.index(min(temps)) + 1,
            min(temps),
            round(sum(temps) / len(temps)),
            round(pack.cells * 3.65 * 10),
            round(ccl * 10),
            round(pack.cells * 2.8 * 10),
            round(dcl * 10),
            pack.cells,
        )
        body = head + extremes + struct.pack(f">{len(mv)}H", *mv)
        body += struct.pack(f">H{len(temps)}H", len(temps), *temps)
        body += struct.pack(">HHH", 0, pack.balance_bits(), 12 if relayed else 0x0C04)
        return body + f"JBD4810000{pack.address}".encode().ljust(30, b"\0")

    def _params_1(self, pack: Pack) -> bytes:
        body = bytes(16) + b"UP16S015000000000000000000".ljust(30, b"\0")
        body += struct.pack(">HHH", 2025, 5, 7) + f"JBD4810000{pack.address}".encode().ljust(
            30, b"\0"
        )
        return body + struct.pack(">HHH", 2025, 4, 6) + bytes(46)

    def _params_2(self, pack: Pack) -> bytes:
        return struct.pack(">H8sII", round(pack.soc * 100), bytes(8), 12345, 23456)

    def _product(self, pack: Pack) -> bytes:
        return (
            struct.pack(">6H", 33, 3, 12, 4, 1, 0) + b"UP16S015.16S100A" + b"JBD".ljust(16, b"\0")
        )

    def state(self, address: int | None = None) -> Sample:
        """What a correct read of ``address`` (default: the first pack) must produce now."""
        pack = self.packs[address if address is not None else min(self.packs)]
        frame = codec.build(pack.address, codec.READ, *codec.PACK_STATUS, self._status(pack))
        return codec.parse_response(frame).fill_derived()
