"""Hypothesis: random and mutated frames make the JBD codec raise FrameError and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bmshost.errors import FrameError
from bmshost_jbd import codec

VALID = [
    bytes.fromhex(r)
    for c in json.loads((Path(__file__).parent / "fixtures" / "jbd.json").read_text())
    for r in c["response_hex"]
    if r.startswith("dd")
]


def _parse(frame: bytes) -> None:
    try:
        codec.parse_response(frame)
    except FrameError:
        pass


@given(st.binary(max_size=120))
def test_random_bytes(data: bytes) -> None:
    _parse(data)
    frame, used = codec.find_frame(data)
    assert 0 <= used <= len(data)
    if frame is not None:
        _parse(frame)


@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_frames(frame: bytes, data: st.DataObject) -> None:
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if op == "flip" and mutated:
            mutated[pos] ^= data.draw(st.integers(1, 255))
        elif op == "drop" and mutated:
            del mutated[pos]
        else:
            mutated.insert(pos, data.draw(st.integers(0, 255)))
    _parse(bytes(mutated))


@given(st.binary(min_size=0, max_size=80), st.integers(0, 0xFF))
def test_checksummed_garbage_payloads(payload: bytes, reg: int) -> None:
    """Frames with a valid envelope and checksum but arbitrary content still fail cleanly."""
    body = bytes((0, len(payload))) + payload
    frame = bytes((0xDD, reg)) + body + codec.checksum(body).to_bytes(2, "big") + b"\x77"
    _parse(frame)
