"""Fuzzing: random bytes and mutated valid frames make every JK codec raise only FrameError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jk_helpers import captures

from bmshost.errors import FrameError
from bmshost.link import CanFrame
from bmshost_jk import can_codec, jk02, pb_codec, serial_codec
from bmshost_jk.jk02_sim import cell_record, settings_record
from bmshost_jk.pack import Pack

SERIAL_FRAMES = [bytes.fromhex(c["response_hex"][0]) for c in captures("jk_rs485")]
RECORDS = [bytes.fromhex(c["response_hex"][0]) for c in captures("jk_ble")] + [
    cell_record(Pack(cells=16), 32), cell_record(Pack(cells=8), 24), settings_record(Pack()),
]
PB_REPLIES = [bytes.fromhex("".join(c["response_hex"])) for c in captures("jk_pb")]
CAN_FRAMES = [CanFrame.from_candump(x) for c in captures("jk_can") for x in c["response_hex"]]


def _only_frame_error(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except FrameError:
        pass


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[pos]
    return bytes(data)


def _fix_serial_checksum(frame: bytes) -> bytes:
    """Mutations behind a valid envelope reach the TLV walker, not just the checksum."""
    if len(frame) < serial_codec.MIN_FRAME:
        return frame
    head = frame[:2] + (len(frame) - 2).to_bytes(2, "big") + frame[4:-5] + b"\x68"
    return head + serial_codec.checksum(head)


def _fix_record_checksum(record: bytes) -> bytes:
    if len(record) < jk02.RECORD_LEN:
        return record
    return record[:299] + bytes((jk02.sum8(record[:299]),)) + record[300:]


def _serial_all(data: bytes) -> None:
    serial_codec.framer(data)
    serial_codec.recognise(data)
    serial_codec.probe_accepts(data)
    _only_frame_error(lambda: serial_codec.parse_frame(data))
    _only_frame_error(lambda: serial_codec.decode([data]))


def _jk02_all(data: bytes) -> None:
    jk02.ble_framer(data)
    jk02.recognise(data)
    for slots in (None, 24, 32):
        _only_frame_error(lambda s=slots: jk02.parse_record(data, s))  # type: ignore[misc]
    _only_frame_error(lambda: jk02.decode([data]))
    _only_frame_error(lambda: jk02.parse_command(data))


def _pb_all(data: bytes) -> None:
    pb_codec.framer(data)
    pb_codec.recognise(data)
    pb_codec.probe_accepts(data)
    _only_frame_error(lambda: pb_codec.decode([data]))
    _only_frame_error(lambda: pb_codec.split_reply(data))
    _only_frame_error(lambda: pb_codec.check_reply(data, 3, pb_codec.TRIGGER_STATUS))
    _only_frame_error(lambda: pb_codec.parse_trigger(data))
    _only_frame_error(lambda: pb_codec.parse_ack(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _serial_all(data)
    _jk02_all(data)
    _pb_all(data)


@settings(max_examples=400, deadline=None)
@given(mutated(SERIAL_FRAMES), st.booleans())
def test_mutated_serial_frames(frame: bytes, fix: bool) -> None:
    _serial_all(_fix_serial_checksum(frame) if fix else frame)


@settings(max_examples=400, deadline=None)
@given(mutated(RECORDS), st.booleans())
def test_mutated_jk02_records(record: bytes, fix: bool) -> None:
    _jk02_all(_fix_record_checksum(record) if fix else record)


@settings(max_examples=300, deadline=None)
@given(mutated(PB_REPLIES))
def test_mutated_pb_replies(reply: bytes) -> None:
    _pb_all(reply)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*sorted(can_codec.KNOWN_IDS), 0x123, 0x18F128F5]),
                          st.binary(max_size=8)), min_size=1, max_size=12))
def test_random_can_frames(items: list[tuple[int, bytes]]) -> None:
    frames = [CanFrame(i, d, i > 0x7FF) for i, d in items]
    _only_frame_error(lambda: can_codec.decode(frames))
    cache = can_codec.cache_frames(frames)
    for positive in (True, False):
        _only_frame_error(lambda p=positive: can_codec.decode_cache(cache, charge_positive=p))  # type: ignore[misc]


def test_corrupt_frames_name_the_problem() -> None:
    bad = bytearray(SERIAL_FRAMES[0])
    bad[-1] ^= 1
    try:
        serial_codec.parse_frame(bytes(bad))
    except FrameError as exc:
        assert "checksum" in str(exc)
    else:
        raise AssertionError("bad checksum accepted")
    record = bytearray(RECORDS[0])
    record[100] ^= 0xFF
    try:
        jk02.check_record(bytes(record))
    except FrameError as exc:
        assert "checksum" in str(exc)
    else:
        raise AssertionError("bad record checksum accepted")
    try:
        can_codec.decode([CanFrame(0x2F4, b"\x01", False)])
    except FrameError as exc:
        assert "needs 5" in str(exc)
    else:
        raise AssertionError("short CAN frame accepted")


def test_impossible_values_behind_a_valid_checksum_are_refused() -> None:
    pack = Pack(cells=4)
    record = bytearray(cell_record(pack, 32))
    record[173] = 150  # SoC 150 %
    try:
        jk02.parse_record(_fix_record_checksum(bytes(record)), 32)
    except FrameError as exc:
        assert "SoC" in str(exc)
    else:
        raise AssertionError("SoC 150 % accepted")
    record = bytearray(cell_record(pack, 32))
    record[6:8] = (9000).to_bytes(2, "little")
    try:
        jk02.parse_record(_fix_record_checksum(bytes(record)), 32)
    except FrameError as exc:
        assert "cell voltage" in str(exc)
    else:
        raise AssertionError("9 V cell accepted")
    try:
        can_codec.decode([CanFrame(0x2F4, bytes.fromhex("1301d711ff006400"), False)])
    except FrameError as exc:
        assert "SoC" in str(exc)
    else:
        raise AssertionError("CAN SoC 255 % accepted")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([24, 32]), st.integers(0, 2**32 - 1), st.binary(min_size=300, max_size=300))
def test_cell_slots_follow_the_mask(slots: int, mask: int, record: bytes) -> None:
    """The compiled cell reader picks exactly the masked slots, gaps included."""
    expected = [
        int.from_bytes(record[6 + 2 * i : 8 + 2 * i], "little")
        for i in range(slots)
        if mask >> i & 1
    ]
    assert jk02.cell_voltages_mv(record, slots, mask) == expected


def test_alarm_words_are_decoded_afresh_for_each_caller() -> None:
    from bmshost_jk.alarms import jk02_alarms, serial_alarms

    first = jk02_alarms(1 << 4, 32)
    assert first["high_cell_voltage"] == 2
    first["high_cell_voltage"] = 0  # a caller changing its copy ...
    assert jk02_alarms(1 << 4, 32)["high_cell_voltage"] == 2  # ... changes nobody else's
    assert jk02_alarms(1 << 21, 32)["high_temperature"] == 2
    assert jk02_alarms(1 << 21, 24)["high_temperature"] == 0  # 24-slot records: bits 0-15 only
    warned = serial_alarms(1)
    assert warned["low_soc"] == 1 and serial_alarms(1 << 10)["high_cell_voltage"] == 2
