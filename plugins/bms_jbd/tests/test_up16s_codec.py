"""JBD UP16S codec: every capture decodes to its expected values; CRC vectors; framer; fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.errors import FrameError
from bmshost_jbd import up16s_codec as codec
from bmshost_jbd.up16s_sim import Up16sSimulator

CAPTURES = [
    c
    for c in json.loads((Path(__file__).parent / "fixtures" / "jbd.json").read_text())
    if c["variant"] == "jbd_up16s"
]
STATUS = [c for c in CAPTURES if c["request_hex"][4:8] == "1000"]


def test_crc_vectors_from_the_spec() -> None:
    assert codec.crc16_modbus(bytes.fromhex("0178100010a00000")) == 0xB27F
    assert codec.crc16_modbus(bytes.fromhex("031016200001020000")) == 0x91CF


def test_requests_equal_the_captured_ones() -> None:
    assert codec.read_request(1, codec.PACK_STATUS).hex() == "0178100010a000007fb2"
    assert codec.read_request(2, codec.PACK_STATUS).hex() == "0278100010a000003fa7"
    assert codec.read_request(1, codec.PACK_PARAMS_1).hex() == "01781c001ca000007c2e"
    assert codec.read_request(1, codec.PACK_PARAMS_2).hex() == "01782006201800007d67"
    assert codec.read_request(1, codec.PRODUCT_INFO).hex() == "01782810283c00007787"
    assert codec.own_status_request(1).hex() == "0145000000540000d4d3"
    for c in CAPTURES:
        assert codec.recognise(bytes.fromhex(c["response_hex"][0]))


@pytest.mark.parametrize("capture", STATUS, ids=lambda c: c["request_hex"][:2] + c["source"][-30:])
def test_pack_status_captures(capture: dict[str, Any]) -> None:
    e = capture["expected"]
    s = codec.parse_response(bytes.fromhex(capture["response_hex"][0]))
    assert s.address == int(capture["request_hex"][:2], 16)
    assert (s.voltage, s.current, s.soc) == (e["voltage"], e["current"], e["soc"])
    assert (s.remaining_ah, s.capacity_ah, s.soh) == (e["capacity_remain"], e["capacity"], e["soh"])
    assert (s.mosfet_temperature, s.cycles) == (e["temp_mos"], e["cycles"])
    assert (s.charge_fet, s.discharge_fet) == (e["charge_fet"], e["discharge_fet"])
    assert s.cell_voltages == e["cell_voltages"] and s.temperatures == e["temperatures"]
    assert [i + 1 for i, b in enumerate(s.cell_balancing or []) if b] == e["balancing_cells"]
    assert s.bms_charge_current_limit == e["charge_current_limit"]
    assert s.bms_discharge_current_limit == e["discharge_current_limit"]
    assert s.bms_charge_voltage_limit == e["max_charge_voltage"]
    assert s.bms_discharge_voltage_limit == e["min_discharge_voltage"]
    assert s.firmware_version == e["firmware"] and s.serial_number == e["pack_serial"]
    x = s.extra or {}
    assert (x["fault_flags"], x["alarm_flags"]) == (e["fault_flags"], e["alarm_flags"])
    assert (x["rated_capacity_ah"], x["ambient_temperature"]) == (
        e["rated_capacity"],
        e["temp_ambient"],
    )
    assert (x["max_cell"], s.cell_voltage_max) == (e["max_cell_no"], e["max_cell_voltage"])
    assert (x["min_cell"], s.cell_voltage_min) == (e["min_cell_no"], e["min_cell_voltage"])
    assert x["avg_cell_voltage"] == e["avg_cell_voltage"] and x["balance_bits"] == e["balance_bits"]
    if e["fault_flags"] & 1:
        assert s.alarms is not None and s.alarms["high_cell_voltage"] == 2
    if e["alarm_flags"] & 4:
        assert s.alarms is not None and s.alarms["high_voltage"] == 1


def test_params_and_product_captures() -> None:
    params = next(c for c in CAPTURES if c["request_hex"][4:8] == "1c00")
    s = codec.parse_response(bytes.fromhex(params["response_hex"][0]))
    e = params["expected"]
    assert s.serial_number == e["pack_serial"] and s.production_date == e["pack_date"]
    assert s.extra == {"bms_model_and_sn": e["bms_model_and_sn"], "bms_date": e["bms_date"]}
    product = next(c for c in CAPTURES if c["request_hex"][4:8] == "2810")
    s = codec.parse_response(bytes.fromhex(product["response_hex"][0]))
    e = product["expected"]
    assert (s.model, s.firmware_version, s.hardware_version) == (
        e["model"],
        e["firmware"],
        str(e["hw_rev"]),
    )
    assert s.extra == {"model_id": e["model_id"], "project_code": e["project_code"]}


def test_set_soc_request_and_ack() -> None:
    req = codec.set_soc_request(1, 80.5)
    assert req[:14].hex() == "0179200620080006114a42441f72"
    ack = codec.build(1, codec.WRITE, *codec.SET_SOC)
    assert codec.parse_response(ack).address == 1
    with pytest.raises(ValueError):
        codec.set_soc_request(1, 101)


def test_framer_resynchronises() -> None:
    frame = bytes.fromhex(STATUS[0]["response_hex"][0])
    corrupt = bytearray(frame)
    corrupt[20] ^= 0xFF
    buf = b"\x00\x77" + bytes(corrupt[:12]) + frame
    got, used = codec.find_frame(buf)
    assert got == frame and used == len(buf)
    assert codec.find_frame(frame[:50]) == (None, 0)
    assert codec.find_frame(b"\x01\x02\x03")[0] is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x01\x78", "too short"),
        (codec.build(1, codec.READ, 0x1000, 0x10A0, b"\x00" * 10)[:-1] + b"\x00", "CRC"),
        (codec.build(1, codec.READ, 0x1000, 0x10A0, b"\x00" * 10), "too short"),
        (codec.build(1, codec.READ, 0x3000, 0x3010, b"\x00" * 4), "no parser"),
        (codec.build(1, codec.WRITE, 0x2006, 0x2008, b"\x00"), "no payload"),
        (codec.build(1, codec.OWN_STATUS, 0, 0x54, b"\x00" * 20), "too short"),
    ],
)
def test_bad_frames(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        codec.parse_response(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        codec.parse_response(data)
    except FrameError:
        pass
    frame, used = codec.find_frame(data)
    assert 0 <= used <= len(data) and (frame is None or codec.recognise(frame))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([bytes.fromhex(c["response_hex"][0]) for c in CAPTURES]),
    st.integers(8, 200),
    st.integers(0, 255),
)
def test_fuzz_mutated_payloads_with_valid_crc(frame: bytes, pos: int, value: int) -> None:
    # Mutate inside the payload and re-seal it, so the parsers (not the CRC) meet the damage.
    body = bytearray(frame[:-2])
    body[pos % len(body)] = value
    function = body[1] if body[1] in codec.FUNCTIONS else codec.READ
    sealed = codec.build(
        body[0],
        function,
        int.from_bytes(body[2:4], "big"),
        int.from_bytes(body[4:6], "big"),
        bytes(body[8:]),
    )
    try:
        codec.parse_response(sealed)
    except FrameError:
        pass


def test_simulator_frames_parse_back() -> None:
    sim = Up16sSimulator(addresses="1,2")
    for address in (1, 2):
        reply = sim.feed(codec.read_request(address, codec.PACK_STATUS))
        assert codec.parse_response(reply).address == address
    assert sim.feed(codec.read_request(3, codec.PACK_STATUS)) == b""
    assert sim.feed(codec.own_status_request(2)) == b""  # only the master answers 0x45
