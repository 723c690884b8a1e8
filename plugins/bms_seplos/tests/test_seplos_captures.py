"""Every Seplos capture in tests/fixtures/seplos.json decodes to its expected values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos import ascii_v2, binary_v2, modbus_v3
from bmshost_seplos.plugin import recognise_ble, recognise_v2, recognise_v3

CAPTURES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "seplos.json").read_text()
)
IDS = [f"{c['variant']}-{i}" for i, c in enumerate(CAPTURES)]


def _x(key: str) -> Callable[[Sample], Any]:
    return lambda s: (s.extra or {})[key]


def _all_temps(s: Sample) -> list[float]:
    return [*(s.temperatures or []), (s.extra or {})["ambient_temperature"], s.mosfet_temperature]


# capture key -> how to read it from the decoded sample
FIELDS: dict[str, Callable[[Sample], Any]] = {
    "voltage": lambda s: s.voltage,
    "current": lambda s: s.current,
    "soc": lambda s: s.soc,
    "soh": lambda s: s.soh,
    "cycles": lambda s: s.cycles,
    "capacity_remain": lambda s: s.remaining_ah,
    "capacity": lambda s: s.capacity_ah,
    "cell_voltages": lambda s: s.cell_voltages,
    "cell_count": lambda s: len(s.cell_voltages) if s.cell_voltages else _x("cell_count")(s),
    "temperatures": _all_temps,
    "temp_count": lambda s: len(_all_temps(s)),
    "data_flag": _x("data_flag"),
    "command_group": _x("command_group"),
    "custom_number": _x("custom_number"),
    "rated_capacity": _x("rated_capacity"),
    "port_voltage": _x("port_voltage"),
    "switch_state": _x("switch_state"),
    "discharge_fet": lambda s: s.discharge_fet,
    "charge_fet": lambda s: s.charge_fet,
    "heater": lambda s: s.heating,
    "total_discharge_ah": _x("total_discharged_ah"),
    "avg_cell_voltage": _x("average_cell_voltage"),
    "avg_cell_temp": _x("average_cell_temperature"),
    "max_cell_voltage": lambda s: s.cell_voltage_max,
    "min_cell_voltage": lambda s: s.cell_voltage_min,
    "max_cell_temp": _x("max_cell_temperature"),
    "min_cell_temp": _x("min_cell_temperature"),
    "max_discharge_current": lambda s: s.bms_discharge_current_limit,
    "max_charge_current": lambda s: s.bms_charge_current_limit,
    "cell_temps": lambda s: s.temperatures,
    "temp_ambient": _x("ambient_temperature"),
    "temp_mos": lambda s: s.mosfet_temperature,
    "suggest_pack_ov": _x("suggested_pack_ov"),
    "suggest_pack_uv": _x("suggested_pack_uv"),
    "pack_count": _x("pack_count"),
    "system_state": _x("system_state"),
    "fet_event": _x("fet_event"),
    "pcs_protocol_type": _x("pcs_protocol_type"),
    "pcs_baud": _x("pcs_baud"),
    "pcs_name": _x("pcs_name"),
    "protocol_name": _x("protocol_name"),
    "ntc_count": _x("ntc_count"),
    "pack_ov_protection": _x("pack_ov_protection"),
    "pack_uv_protection": _x("pack_uv_protection"),
    "cell_ov_protection": _x("cell_ov_protection"),
    "cell_uv_protection": _x("cell_uv_protection"),
}
FRAME_FIELDS = {"header_ver", "header_adr", "rtn", "lenid", "info_len"}


def _decoder(variant: str) -> Callable[[list[bytes]], Sample]:
    return {
        "seplos_v2_ascii": ascii_v2.decode,
        "seplos_v2_ble_binary": binary_v2.decode,
        "seplos_v3_modbus": modbus_v3.decode,
    }[variant]


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_capture_decodes_to_expected(cap: dict[str, Any]) -> None:
    frames = [bytes.fromhex(x) for x in cap["response_hex"]]
    exp = cap["expected"]
    if "exception_code" in exp:
        with pytest.raises(FrameError, match=f"exception {exp['exception_code']}"):
            _decoder(cap["variant"])(frames)
        assert frames[0][1] == exp["exception_function"]
        return
    sample = _decoder(cap["variant"])(frames)
    for key, value in exp.items():
        if key in FRAME_FIELDS:
            continue  # checked by test_frame_header_fields
        assert key in FIELDS, f"capture key {key!r} is not checked"
        got = FIELDS[key](sample)
        assert got == pytest.approx(value), key


def test_frame_header_fields() -> None:
    for cap in CAPTURES:
        exp = cap["expected"]
        frame = bytes.fromhex(cap["response_hex"][0])
        if "header_ver" in exp:
            ver, adr, _, rtn, info = ascii_v2.parse_frame(frame)
            assert (ver, adr, rtn) == (exp["header_ver"], exp["header_adr"], exp["rtn"])
            assert len(info) * 2 == exp["lenid"]
        if "info_len" in exp:
            assert len(binary_v2.parse_frame(frame)[4]) == exp["info_len"]


def test_requests_in_the_captures_are_what_the_driver_sends() -> None:
    assert ascii_v2.build_request(0, ascii_v2.TELEMETRY) == b"~20004642E00200FD37\r"
    assert ascii_v2.build_request(1, ascii_v2.TELEMETRY) == b"~20014642E00201FD35\r"
    assert ascii_v2.build_request(0, ascii_v2.ALARMS) == b"~20004644E00200FD35\r"
    assert ascii_v2.build_request(0, ascii_v2.TELEMETRY, group=1) == b"~20004642E00201FD36\r"
    assert ascii_v2.build_request(0, ascii_v2.MANUFACTURER) == b"~200046510000FDAE\r"
    assert binary_v2.build_request(binary_v2.TELEMETRY).hex() == "7e10004661000100f7c10d"
    assert binary_v2.build_request(binary_v2.PARALLEL).hex() == "7e100046620000a68a0d"
    assert binary_v2.build_request(binary_v2.MANUFACTURER).hex() == "7e100046510000" + "3a7f0d"
    sent = {c["request_hex"] for c in CAPTURES if c["variant"] == "seplos_v3_modbus"}
    built = {
        modbus_v3.build_read(1, 4, 0x1000, 0x11).hex(),
        modbus_v3.build_read(1, 4, 0x1100, 0x1A).hex(),
        modbus_v3.build_read(0, 4, 0x2000, 0x1A).hex(),
        modbus_v3.build_read(0, 1, 0x2200, 0x50).hex(),
        modbus_v3.build_read(0, 4, 0x1800, 0x24).hex(),
        modbus_v3.build_read(0xE0, 4, 0x1300, 0x35).hex(),
        modbus_v3.build_read(1, 1, 0x1200, 0x0900).hex(),
    }  # a bad count: exception 2
    assert sent == built


def test_checksum_worked_examples() -> None:
    assert ascii_v2.length_field(2) == 0xE002 and ascii_v2.length_field(0x096) == 0x1096
    assert ascii_v2.checksum(b"20004642E00200") == 0xFD37
    assert binary_v2.crc16_xmodem(bytes.fromhex("100046510000")) == 0x3A7F
    assert modbus_v3.crc16_modbus(bytes.fromhex("00042000001a")) == 0xD07B


def test_v2_temperature_split_and_mosfet_sensor() -> None:
    cap = CAPTURES[0]
    sample = ascii_v2.decode([bytes.fromhex(cap["response_hex"][0])])
    assert sample.temperatures == [25.1, 24.5, 23.6, 25.1]  # the four cell sensors
    assert sample.mosfet_temperature == 24.7  # sixth sensor: power/MOSFET
    assert sample.address == 0 and sample.power == pytest.approx(52.8 * -6.76)


def test_eia_reads_32_bit_values_low_word_first() -> None:
    regs = [0x1472, 0x0001, 0xFFBD, 0xFFFF] + [0] * 0x16
    regs[0x18] = 500
    sample = modbus_v3.decode_eia(regs)
    assert sample.voltage == pytest.approx(0x11472 / 100)
    assert sample.current == pytest.approx(-6.7)


def test_recognisers_pick_exactly_one_variant() -> None:
    recognisers = {
        "seplos_v2_ascii": recognise_v2,
        "seplos_v2_ble_binary": recognise_ble,
        "seplos_v3_modbus": recognise_v3,
    }
    for cap in CAPTURES:
        frame = bytes.fromhex(cap["response_hex"][0])
        hits = {name for name, fn in recognisers.items() if fn(frame)}
        assert hits == {cap["variant"]}, cap["source"]
