"""Daly CAN: 29-bit J1939-style ids around the A5 payloads (protocols-main.md §2.2).

Request ``0x18 <data id> <board> 0x40`` with 8 zero bytes; reply ``0x18 <data id> 0x40 <board>``
whose 8 bytes are the A5 reply's data field. Multi-frame replies (0x95, 0x96) repeat the id and
number the frames in byte 0. SoC write id ``0x161E0080 | board << 8`` (unverified on hardware).
"""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.errors import FrameError
from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_daly import a5
from bmshost_daly.options import charge_below_offset

PRIORITY = 0x18
HOST = 0x40
SOC_WRITE_BASE = 0x161E0080


def request_id(data_id: int, board: int) -> int:
    return PRIORITY << 24 | data_id << 16 | board << 8 | HOST


def reply_id(data_id: int, board: int) -> int:
    return PRIORITY << 24 | data_id << 16 | HOST << 8 | board


def build_request(data_id: int, board: int) -> CanFrame:
    return CanFrame(request_id(data_id, board), bytes(8), True)


def build_set_soc(board: int, soc: float) -> CanFrame:
    value = round(soc * 10)
    if not 0 <= value <= 1000:
        raise ValueError(f"SoC {soc} % is outside 0..100 %")
    return CanFrame(SOC_WRITE_BASE | board << 8, value.to_bytes(2, "big") + bytes(6), True)


def parse_reply(frame: CanFrame) -> tuple[int, int, bytes]:
    """(board, data id, 8 data bytes) of a reply frame; FrameError when it is not one."""
    arb = frame.arbitration_id
    if not frame.is_extended_id or arb >> 24 != PRIORITY or (arb >> 8) & 0xFF != HOST:
        raise FrameError(f"not a Daly CAN reply id: {arb:08X}")
    data_id = (arb >> 16) & 0xFF
    if data_id not in a5.READ_IDS:
        raise FrameError(f"Daly CAN: unknown data id {data_id:02X} in {arb:08X}")
    if len(frame.data) != a5.DATA_LEN:
        raise FrameError(f"Daly CAN reply {arb:08X} must carry 8 bytes, got {len(frame.data)}")
    return arb & 0xFF, data_id, bytes(frame.data)


def decode(frames: Sequence[bytes | CanFrame], *, current_sign: str = "auto") -> Sample:
    """Decoder for ``bmshost decode``: Daly CAN reply frames of one poll → one sample.

    Request frames (``0x18 id board 40``) in the list are skipped, so a candump of a whole
    exchange decodes."""
    payloads: list[tuple[int, bytes]] = []
    board: int | None = None
    for frame in frames:
        if not isinstance(frame, CanFrame):
            raise FrameError("Daly CAN decoder takes CAN frames (ID#DATA)")
        if frame.arbitration_id & 0xFF == HOST and frame.arbitration_id >> 24 == PRIORITY:
            continue  # our own request
        board, data_id, data = parse_reply(frame)
        payloads.append((data_id, data))
    if not payloads:
        raise FrameError("no Daly CAN reply frame")
    sample = a5.decode_payloads(payloads, charge_below_offset(current_sign, "a5"))
    sample.address = board
    return sample
