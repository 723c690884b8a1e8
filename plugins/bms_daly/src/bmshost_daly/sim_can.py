"""Device side of Daly CAN: one or several boards answering 29-bit requests with A5 payloads."""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.driver import Simulator
from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_daly import a5, can_codec
from bmshost_daly.pack import Pack
from bmshost_daly.sim_a5 import make_boards, pack_state, payloads_for


class DalyCanSimulator(Simulator):
    kind = "can"

    def __init__(
        self,
        cells: int = 16,
        address: int | None = None,
        addresses: str | int | None = None,
        sensors: int = 2,
        capacity: float = 100.0,
        soc: float = 60.0,
        current: float = 0.0,
    ) -> None:
        self.boards = make_boards(addresses, address, "DALYCAN", cells=cells, sensors=sensors,
                                  capacity=capacity, soc=soc, current=current)
        self.received: list[CanFrame] = []

    @property
    def pack(self) -> Pack:
        return next(iter(self.boards.values()))

    def tick(self, dt: float) -> None:
        for pack in self.boards.values():
            pack.tick(dt)

    def on_frame(self, frame: CanFrame) -> Sequence[CanFrame]:
        arb = frame.arbitration_id
        if not frame.is_extended_id:
            return ()
        if arb & 0xFFFF00FF == can_codec.SOC_WRITE_BASE:
            pack = self.boards.get((arb >> 8) & 0xFF)
            if pack is not None and len(frame.data) >= 2:
                soc = int.from_bytes(frame.data[:2], "big") / 10
                if soc <= 100:
                    pack.soc = soc
                self.received.append(frame)
            return ()
        if arb >> 24 != can_codec.PRIORITY or arb & 0xFF != can_codec.HOST:
            return ()
        board, data_id = (arb >> 8) & 0xFF, (arb >> 16) & 0xFF
        pack = self.boards.get(board)
        if pack is None or data_id not in a5.READ_IDS:
            return ()
        self.received.append(frame)
        reply = can_codec.reply_id(data_id, board)
        return [CanFrame(reply, d, True) for d in payloads_for(pack, data_id, board)]

    def state(self) -> Sample:
        return pack_state(self.pack)

    def states(self) -> dict[int, Sample]:
        return {board: pack_state(pack, board) for board, pack in self.boards.items()}
