"""Device side of the Daly A5 protocol: one or several boards on one RS485 bus (or one BLE module).

``DalyA5Simulator(cells=16, addresses="1,2")`` answers host address 0x3F + board for each board
(0x40 for board 1); the BLE form also answers host 0x80. Cell-voltage replies send either
ceil(cells / 3) frames or all 16 (``all_cell_frames=1``, as some firmware does).
"""

from __future__ import annotations

import datetime as dt

from bmshost.driver import Simulator
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_daly import a5
from bmshost_daly.pack import Pack


def parse_addresses(addresses: str | int | None, address: int | None) -> list[int]:
    if addresses is None:
        return [address if address is not None else 1]
    if isinstance(addresses, int):
        return [addresses]
    out = [int(a, 0) for a in str(addresses).replace(";", ",").split(",") if a.strip()]
    if not out or any(not 1 <= a <= 16 for a in out):
        raise ValueError("Daly board addresses must be 1..16")
    return out


def make_boards(
    addresses: str | int | None,
    address: int | None,
    serial_prefix: str,
    *,
    cells: int,
    sensors: int,
    capacity: float,
    soc: float,
    current: float,
) -> dict[int, Pack]:
    """One simulated pack per board address (a daisy chain), each with its own serial number."""
    return {
        b: Pack(cells=cells, sensors=sensors, capacity_ah=capacity, soc=soc, current=current,
                serial=f"{serial_prefix}{b:05d}")
        for b in parse_addresses(addresses, address)
    }


def encode_current(current: float, below_is_charge: bool = True) -> int:
    raw = round(30000 - current * 10) if below_is_charge else round(30000 + current * 10)
    return max(0, min(0xFFFF, raw))


def u16(value: float) -> bytes:
    return int(value).to_bytes(2, "big")


def u32(value: float) -> bytes:
    return int(value).to_bytes(4, "big")


def payloads_for(
    pack: Pack, data_id: int, board: int, all_cell_frames: bool = False
) -> list[bytes]:
    """The 8-byte data fields a board sends for ``data_id`` (several for multi-frame ids)."""
    cells = pack.cell_voltages() if data_id in (a5.CELL_MINMAX, a5.CELL_VOLTAGES) else []
    temps = pack.temperatures() if data_id in (a5.TEMP_MINMAX, a5.CELL_TEMPS) else []
    if data_id == a5.SOC_PACK:
        return [
            u16(round(pack.voltage * 10))
            + u16(0)
            + u16(encode_current(pack.effective_current()))
            + u16(round(pack.soc * 10))
        ]
    if data_id == a5.CELL_MINMAX:
        hi = max(range(len(cells)), key=lambda i: cells[i])
        lo = min(range(len(cells)), key=lambda i: cells[i])
        return [
            u16(round(cells[hi] * 1000))
            + bytes((hi + 1,))
            + u16(round(cells[lo] * 1000))
            + bytes((lo + 1, 0, 0))
        ]
    if data_id == a5.TEMP_MINMAX:
        hi = max(range(len(temps)), key=lambda i: temps[i])
        lo = min(range(len(temps)), key=lambda i: temps[i])
        return [bytes((round(temps[hi]) + 40, hi + 1, round(temps[lo]) + 40, lo + 1)) + bytes(4)]
    if data_id == a5.MOS_CAPACITY:
        current = pack.effective_current()
        state = 1 if current > 0 else 2 if current < 0 else 0
        return [
            bytes((state, pack.charge_fet, pack.discharge_fet, 0x2A))
            + u32(round(pack.remaining_ah * 1000))
        ]
    if data_id == a5.STATUS:
        return [
            bytes((pack.cells, pack.sensors, pack.current > 0, pack.current < 0, 0))
            + u16(pack.cycles)
            + bytes(1)
        ]
    if data_id == a5.CELL_VOLTAGES:
        count = 16 if all_cell_frames else -(-pack.cells // 3)
        out = []
        for no in range(1, count + 1):
            mv = [
                round(cells[i] * 1000) if i < len(cells) else 0 for i in range(no * 3 - 3, no * 3)
            ]
            out.append(bytes((no,)) + b"".join(u16(v) for v in mv) + bytes(1))
        return out
    if data_id == a5.CELL_TEMPS:
        out = []
        for no in range(1, -(-pack.sensors // 7) + 1):
            ts = [round(temps[i]) + 40 if i < len(temps) else 0 for i in range(no * 7 - 7, no * 7)]
            out.append(bytes((no, *ts)))
        return out
    if data_id == a5.BALANCE:
        bits = sum(1 << i for i, on in enumerate(pack.balancing()) if on)
        return [bits.to_bytes(6, "little") + bytes(2)]
    if data_id == a5.FAILURES:
        b0 = (0x02 if pack.high_cell_trip else 0) | (0x08 if pack.low_cell_trip else 0)
        return [bytes((b0,)) + bytes(7)]
    if data_id == a5.RATED:
        return [u32(round(pack.capacity_ah * 1000)) + u32(3200)]
    if data_id == a5.DETAILS:
        return [bytes((0, 0, 24, 5, 17)) + bytes(3)]
    if data_id == a5.BATTERY_CODE:
        code = f"{pack.serial}-{board:02d}".encode().ljust(35, b"\x00")
        return [bytes((no,)) + code[no * 7 - 7 : no * 7] for no in range(1, 6)]
    return []


def apply_write(pack: Pack, data_id: int, data: bytes) -> bytes | None:
    """Perform a write command; return the reply data or None when the request is malformed."""
    if data_id == a5.SET_SOC:
        soc = int.from_bytes(data[6:8], "big") / 10
        if soc > 100:
            return bytes(8)  # byte 0 = 0: refused
        pack.soc = soc
        return bytes((1,)) + bytes(7)
    if data[0] not in (0, 1):
        return None
    on = bool(data[0])
    if data_id == a5.CHARGE_MOS:
        if on and pack.high_cell_trip:
            return bytes(8)  # the protection keeps the FET open
        pack.charge_fet = on
    else:
        if on and pack.low_cell_trip:
            return bytes(8)
        pack.discharge_fet = on
    return bytes((data[0],)) + bytes(7)


class DalyA5Simulator(Simulator):
    kind = "stream"

    def __init__(
        self,
        cells: int = 16,
        address: int | None = None,
        addresses: str | int | None = None,
        sensors: int = 2,
        capacity: float = 100.0,
        soc: float = 60.0,
        current: float = 0.0,
        all_cell_frames: int = 0,
        ble: int = 0,
    ) -> None:
        self.boards = make_boards(addresses, address, "DALYSIM", cells=cells, sensors=sensors,
                                  capacity=capacity, soc=soc, current=current)
        self.all_cell_frames = bool(all_cell_frames)
        self.ble = bool(ble)
        self._buf = bytearray()
        self.requests: list[bytes] = []  # every valid request seen (tests inspect writes)
        self.now = dt.datetime(2024, 5, 17, 12, 30)

    @property
    def pack(self) -> Pack:
        return next(iter(self.boards.values()))

    def tick(self, dt_s: float) -> None:
        for pack in self.boards.values():
            pack.tick(dt_s)

    def _board_for(self, host: int) -> int | None:
        if self.ble and host == 0x80:
            return next(iter(self.boards))
        board = host - 0x3F
        return board if board in self.boards else None

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            frame, used = a5.framer(bytes(self._buf))
            del self._buf[:used]
            if frame is None:
                break
            try:
                host, data_id, payload = a5.parse_frame(frame)
            except FrameError:
                continue  # a real BMS ignores a corrupt request
            out += self._answer(host, data_id, payload)
        return bytes(out)

    def _answer(self, host: int, data_id: int, payload: bytes) -> bytes:
        board = self._board_for(host)
        if board is None:
            return b""
        pack = self.boards[board]
        self.requests.append(a5.build_frame(host, data_id, payload))
        if data_id in (a5.SET_SOC, a5.CHARGE_MOS, a5.DISCHARGE_MOS):
            reply = apply_write(pack, data_id, payload)
            return a5.build_frame(board, data_id, reply) if reply is not None else b""
        return b"".join(
            a5.build_frame(board, data_id, d)
            for d in payloads_for(pack, data_id, board, self.all_cell_frames)
        )

    def state(self) -> Sample:
        return pack_state(self.pack)

    def states(self) -> dict[int, Sample]:
        return {board: pack_state(pack, board) for board, pack in self.boards.items()}


def pack_state(pack: Pack, address: int | None = None) -> Sample:
    """The truth in model units, rounded as the A5 protocol carries it."""
    cells = pack.cell_voltages()
    return Sample(
        voltage=round(pack.voltage, 1),
        current=round(pack.effective_current(), 1),
        soc=round(pack.soc, 1),
        capacity_ah=pack.capacity_ah,
        remaining_ah=round(pack.remaining_ah, 3),
        cycles=pack.cycles,
        cell_voltages=cells,
        temperatures=[float(round(t)) for t in pack.temperatures()],
        charge_fet=pack.charge_fet,
        discharge_fet=pack.discharge_fet,
        alarms={
            "high_cell_voltage": 2 if pack.high_cell_trip else 0,
            "low_cell_voltage": 2 if pack.low_cell_trip else 0,
        },
        address=address,
    )
