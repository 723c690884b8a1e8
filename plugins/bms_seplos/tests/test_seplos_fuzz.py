"""Random and mutated frames make the Seplos codecs raise FrameError and nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos import ascii_v2, binary_v2, modbus_v3, v2_fields

CAPTURES = json.loads((Path(__file__).parent / "fixtures" / "seplos.json").read_text())


def _frames(variant: str) -> list[bytes]:
    return [
        bytes.fromhex(x) for c in CAPTURES if c["variant"] == variant for x in c["response_hex"]
    ]


ASCII = _frames("seplos_v2_ascii")
BINARY = _frames("seplos_v2_ble_binary")
MODBUS = _frames("seplos_v3_modbus")


def _mutate(frame: bytes, data: st.DataObject) -> bytes:
    out = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(("flip", "cut", "insert")))
        if op == "flip" and out:
            out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
        elif op == "cut" and out:
            i = data.draw(st.integers(0, len(out) - 1))
            del out[i : i + data.draw(st.integers(1, 8))]
        else:
            out.insert(data.draw(st.integers(0, len(out))), data.draw(st.integers(0, 255)))
    return bytes(out)


def _only_frame_error(decode: Callable[[list[bytes]], Sample], frames: list[bytes]) -> None:
    try:
        decode(frames)
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=3))
def test_random_bytes_all_codecs(frames: list[bytes]) -> None:
    for decode in (ascii_v2.decode, binary_v2.decode, modbus_v3.decode):
        _only_frame_error(decode, frames)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_ascii_mutated_with_fixed_checksums(data: st.DataObject) -> None:
    _, address, cid1, rtn, info = ascii_v2.parse_frame(data.draw(st.sampled_from(ASCII)))
    mutated_info = _mutate(info, data)
    frame = ascii_v2.build_frame(address, rtn, mutated_info, cid1=cid1)  # valid framing
    _only_frame_error(ascii_v2.decode, [frame])
    _only_frame_error(ascii_v2.decode, [_mutate(frame, data)])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_v2_info_decoders_on_random_payloads(info: bytes) -> None:
    for decode in (
        v2_fields.decode_telemetry,
        v2_fields.decode_alarms,
        v2_fields.decode_manufacturer,
        binary_v2.decode_parallel,
    ):
        try:
            decode(info)
        except FrameError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_binary_mutated_with_fixed_crc(data: st.DataObject) -> None:
    ver, adr, cmd, rtn, info = binary_v2.parse_frame(data.draw(st.sampled_from(BINARY)))
    frame = binary_v2.build_frame(ver, adr, cmd, rtn, _mutate(info, data))
    _only_frame_error(binary_v2.decode, [frame])
    _only_frame_error(binary_v2.decode, [_mutate(frame, data)])
    _found, used = binary_v2.framer(_mutate(frame, data))
    assert used >= 0


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_modbus_mutated_with_fixed_crc(data: st.DataObject) -> None:
    frame = _mutate(data.draw(st.sampled_from(MODBUS)), data)
    if data.draw(st.booleans()) and len(frame) > 2:
        frame = modbus_v3.with_crc(frame[:-2])
    _only_frame_error(modbus_v3.decode, [frame])
    _found, used = modbus_v3.framer(frame)
    assert 0 <= used <= len(frame)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), max_size=0x40))
def test_modbus_block_decoders_on_random_registers(regs: list[int]) -> None:
    for decode in (
        modbus_v3.decode_pia,
        modbus_v3.decode_pib,
        modbus_v3.decode_eia,
        modbus_v3.decode_via,
        modbus_v3.decode_spa,
        modbus_v3.decode_pct,
    ):
        try:
            decode(regs)
        except FrameError:
            pass
    raw = b"".join(v.to_bytes(2, "big") for v in regs)
    try:
        modbus_v3.decode_pic(raw)
    except FrameError:
        pass
