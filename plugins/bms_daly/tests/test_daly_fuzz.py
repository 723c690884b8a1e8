"""Random and mutated frames make the Daly codecs raise FrameError and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.errors import FrameError
from bmshost.link import CanFrame
from bmshost_daly import a5, can_codec, modbus

CAPTURES = json.loads((Path(__file__).parent / "fixtures" / "daly.json").read_text())
A5_FRAMES = [bytes.fromhex(x) for c in CAPTURES if "a5" in c["variant"] for x in c["response_hex"]]
D2_FRAMES = [bytes.fromhex(x) for c in CAPTURES if "d2" in c["variant"] for x in c["response_hex"]]
CAN_FRAMES = [
    CanFrame.from_candump(x)
    for c in CAPTURES
    if c["variant"] == "daly_can"
    for x in c["response_hex"]
]


def _mutate(frame: bytes, data: st.DataObject) -> bytes:
    out = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(("flip", "cut", "insert")))
        if op == "flip" and out:
            i = data.draw(st.integers(0, len(out) - 1))
            out[i] = data.draw(st.integers(0, 255))
        elif op == "cut" and out:
            i = data.draw(st.integers(0, len(out) - 1))
            del out[i : i + data.draw(st.integers(1, 8))]
        else:
            out.insert(data.draw(st.integers(0, len(out))), data.draw(st.integers(0, 255)))
    return bytes(out)


def _fix_sum8(frame: bytes) -> bytes:
    """Recompute the checksum so mutations reach the field decoders, not only the check."""
    if len(frame) == a5.FRAME_LEN:
        return frame[:12] + bytes((a5.sum8(frame[:12]),))
    return frame


def _decode_a5(frames: list[bytes]) -> None:
    try:
        a5.decode(frames)
    except FrameError:
        pass


def _decode_d2(frames: list[bytes]) -> None:
    try:
        modbus.decode(frames)
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=6))
def test_a5_random_bytes(frames: list[bytes]) -> None:
    _decode_a5(frames)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a5_mutated_frames(data: st.DataObject) -> None:
    picks = data.draw(st.lists(st.sampled_from(A5_FRAMES), min_size=1, max_size=6))
    frames = [_fix_sum8(_mutate(f, data)) if data.draw(st.booleans()) else f for f in picks]
    _decode_a5(frames)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.binary(min_size=8, max_size=8)), max_size=20))
def test_a5_payload_decoders(payloads: list[tuple[int, bytes]]) -> None:
    try:
        a5.decode_payloads(payloads, cell_count=None)
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_a5_framer_never_loses_track(buf: bytes) -> None:
    frame, used = a5.framer(buf)
    assert 0 <= used <= len(buf)
    if frame is not None:
        assert len(frame) == a5.FRAME_LEN and frame[0] == a5.START


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=3))
def test_d2_random_bytes(frames: list[bytes]) -> None:
    _decode_d2(frames)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_d2_mutated_frames_with_valid_crc(data: st.DataObject) -> None:
    frame = _mutate(data.draw(st.sampled_from(D2_FRAMES)), data)
    if data.draw(st.booleans()) and len(frame) > 2:
        frame = modbus.with_crc(frame[:-2])
    _decode_d2([frame])
    _buf_frame, used = modbus.framer(frame)
    assert 0 <= used <= len(frame)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 0x1FFFFFFF), st.binary(max_size=8)), max_size=12), st.data()
)
def test_can_random_and_mutated(raw: list[tuple[int, bytes]], data: st.DataObject) -> None:
    frames = [CanFrame(arb, payload, True) for arb, payload in raw]
    frames += [
        CanFrame(f.arbitration_id, _mutate(f.data, data)[:8], True)
        for f in data.draw(st.lists(st.sampled_from(CAN_FRAMES), max_size=4))
    ]
    try:
        can_codec.decode(frames)
    except FrameError:
        pass
