"""Every Daly capture in tests/fixtures/daly.json decodes to its expected values, both current
sign conventions included (protocol spec §7.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bmshost.link import CanFrame
from bmshost_daly import a5, can_codec, modbus
from bmshost_daly.plugin import recognise_a5, recognise_d2

CAPTURES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "daly.json").read_text()
)


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [f"{c['variant']}-{i}" for i, c in enumerate(items)]


def _frames(cap: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(x) for x in cap["response_hex"]]


def _can_frames(cap: dict[str, Any]) -> list[CanFrame]:
    return [CanFrame.from_candump(x) for x in cap["response_hex"]]


def _decode(cap: dict[str, Any], sign: str = "auto") -> Any:
    variant = cap["variant"]
    if variant in ("daly_uart_a5", "daly_ble_a5"):
        return a5.decode(_frames(cap), current_sign=sign)
    if variant == "daly_can":
        return can_codec.decode(_can_frames(cap), current_sign=sign)
    assert variant == "daly_ble_modbus_d2"
    return modbus.decode(_frames(cap), current_sign=sign)


def _check(sample: Any, exp: dict[str, Any]) -> None:
    extra = sample.extra or {}
    simple = {
        "voltage": sample.voltage,
        "soc": sample.soc,
        "cycles": sample.cycles,
        "charge_fet": sample.charge_fet,
        "discharge_fet": sample.discharge_fet,
        "temperatures": sample.temperatures,
        "capacity_remain": sample.remaining_ah,
    }
    for key, value in exp.items():
        if key in simple:
            assert simple[key] == pytest.approx(value), key
        elif key == "cell_voltages":
            assert sample.cell_voltages == pytest.approx(value)
        elif key == "cell_count" and sample.cell_voltages is not None:
            assert len(sample.cell_voltages) == value
        elif key in (
            "cell_count",
            "temp_sensor_count",
            "charger_connected",
            "load_connected",
            "dio_bits",
            "current_raw",
            "balancer_state",
        ):
            if key == "temp_sensor_count" and sample.temperatures is not None:
                assert len(sample.temperatures) == value
            else:
                assert extra[key] == value, key
        elif key == "delta_cell_voltage":
            assert extra[key] == pytest.approx(value)
        elif key == "alarm_flags_hex":
            assert extra["alarm_flags"] == value
        elif key in ("max_temp", "min_temp", "max_temp_no", "min_temp_no"):
            name = {
                "max_temp": "max_temperature",
                "min_temp": "min_temperature",
                "max_temp_no": "max_sensor",
                "min_temp_no": "min_sensor",
            }[key]
            assert extra[name] == value
        elif key == "sw_version":
            assert sample.firmware_version == value
        elif key == "hw_version":
            assert sample.hardware_version == value
        elif key == "reply_address_byte":
            assert sample.address == value
        elif key in ("current", "current_offset_decoded", "acquisition_voltage", "frame_numbers"):
            continue  # checked by the sign tests / implied by the cell list
        else:  # pragma: no cover - a new capture key must get a check
            raise AssertionError(f"capture key {key!r} is not checked")


@pytest.mark.parametrize("cap", CAPTURES, ids=_ids(CAPTURES))
def test_capture_decodes_to_expected(cap: dict[str, Any]) -> None:
    _check(_decode(cap), cap["expected"])


SIGNED = [c for c in CAPTURES if "current_raw" in c["expected"]]


@pytest.mark.parametrize("cap", SIGNED, ids=_ids(SIGNED))
def test_current_sign_both_ways(cap: dict[str, Any]) -> None:
    exp = cap["expected"]
    above = _decode(cap, "charge_above_offset")
    below = _decode(cap, "charge_below_offset")
    assert above.current == pytest.approx(exp["current_offset_decoded"])
    assert below.current == pytest.approx(-exp["current_offset_decoded"])
    if "current" in exp:  # the capture's "current" follows the dbus-serialbattery default
        assert _decode(cap).current == pytest.approx(exp["current"])
        assert below.current == pytest.approx(exp["current"])


def test_auto_sign_differs_per_protocol() -> None:
    # raw 30021 over A5: below-offset-charges (dbus-serialbattery default) → discharging 2.1 A
    assert a5.decode([bytes.fromhex("a5019008021400007545037889")]).current == -2.1
    d2 = next(c for c in CAPTURES if c["expected"].get("current_raw") == 30030)
    assert modbus.decode(_frames(d2)).current == 3.0  # D2: above offset charges (aio, esphome)


def test_power_is_derived_from_voltage_and_current() -> None:
    sample = a5.decode([bytes.fromhex("a5019008021400007545037889")])
    assert sample.power == pytest.approx(53.2 * -2.1)


def test_can_min_max_temperatures_give_the_sensor_list() -> None:
    cap = next(c for c in CAPTURES if c["response_hex"][0].startswith("18924001"))
    assert _decode(cap).temperatures == [19.0, 21.0]  # sensor 1 = min, sensor 2 = max


def test_recognisers_tell_the_variants_apart() -> None:
    for cap in CAPTURES:
        if cap["variant"] == "daly_can":
            continue
        frames = _frames(cap)
        is_a5 = cap["variant"] in ("daly_uart_a5", "daly_ble_a5")
        assert all(recognise_a5(f) == is_a5 for f in frames)
        assert all(recognise_d2(f) == (not is_a5) for f in frames)


def test_capture_requests_match_what_the_driver_sends() -> None:
    for cap in CAPTURES:
        req = cap["request_hex"]
        if cap["variant"] in ("daly_uart_a5", "daly_ble_a5"):
            tx = bytes.fromhex(req)
            assert a5.build_request(0x40, tx[2]).hex() == req
        elif cap["variant"] == "daly_can":
            frame = CanFrame.from_candump(req)
            data_id = frame.arbitration_id >> 16 & 0xFF
            assert can_codec.build_request(data_id, 1) == frame
    assert modbus.build_read(0, 0x3E).hex() == "d2030000003ed7b9"
    assert modbus.build_read(0xA9, 0x20).hex() == "d20300a900208791"


def test_write_frames_match_the_spec_examples() -> None:
    import datetime as dt

    when = dt.datetime(2024, 5, 17, 12, 30, 0)
    assert a5.build_set_soc(0x40, 100, when).hex() == "a54021081805110c1e0003e851"
    assert a5.build_switch(0x40, a5.CHARGE_MOS, False).hex()[:10] == "a540da0800"
    assert can_codec.build_set_soc(1, 55.5).to_candump() == "161E0180#022B000000000000"


def test_temperature_frames_without_a_sensor_count_drop_unused_slots() -> None:
    frame = a5.build_frame(1, a5.CELL_TEMPS, bytes((1, 65, 66, 0, 0, 0, 0, 0)))
    assert a5.decode([frame]).temperatures == [25.0, 26.0]
    status = a5.build_frame(1, a5.STATUS, bytes((4, 1, 0, 0, 0, 0, 9, 0)))
    assert a5.decode([status, frame]).temperatures == [25.0]  # 0x94 says one sensor


def test_error_and_garbage_frames_raise_frame_error() -> None:
    from bmshost.errors import FrameError

    good = bytes.fromhex("a5019008021400007545037889")
    with pytest.raises(FrameError, match="checksum"):
        a5.decode([good[:-1] + b"\x00"])
    with pytest.raises(FrameError, match="13 bytes"):
        a5.decode([good[:-2]])
    with pytest.raises(FrameError, match="CRC"):
        modbus.decode([bytes.fromhex("d2030400010002ffff")])
    with pytest.raises(FrameError, match="exception"):
        modbus.decode([modbus.with_crc(bytes.fromhex("d28302"))])
    with pytest.raises(FrameError, match="not a Daly CAN reply"):
        can_codec.decode([CanFrame(0x351, bytes(8), False)])
