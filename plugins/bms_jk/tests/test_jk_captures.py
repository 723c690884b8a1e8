"""Every JK capture in the shared capture set decodes to its expected values.

Each expected key is mapped to where bmshost puts it; an expected key without a mapping fails
the test, so a new capture cannot be silently half-checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jk_helpers import captures

from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_jk import can_codec, jk02, pb_codec, serial_codec

Getter = Callable[[Sample], Any]


def _x(key: str) -> Getter:
    return lambda s: (s.extra or {}).get(key)


SERIAL: dict[str, Getter] = {
    "cell_count": lambda s: s.cell_count,
    "cell_voltages": lambda s: s.cell_voltages,
    "temp_mos": lambda s: s.mosfet_temperature,
    "temp_1": lambda s: s.temperatures[0],
    "temp_2": lambda s: s.temperatures[1],
    "voltage": lambda s: s.voltage,
    "current": lambda s: s.current,
    "soc": lambda s: s.soc,
    "temp_sensor_count": _x("temperature_sensors"),
    "cycles": lambda s: s.cycles,
    "cycle_capacity_ah": _x("cycle_capacity_ah"),
    "warnings_bitmask": _x("warnings"),
    "status_bitmask": _x("status"),
    "charge_fet": lambda s: s.charge_fet,
    "discharge_fet": lambda s: s.discharge_fet,
    "balancer_on": lambda s: any(s.cell_balancing),
    "discharge_overcurrent_protection_a": lambda s: s.bms_discharge_current_limit,
    "charge_overcurrent_protection_a": lambda s: s.bms_charge_current_limit,
    "balance_switch": lambda s: s.balance_fet,
    "capacity": lambda s: s.capacity_ah,
    "charge_switch": lambda s: bool(_x("charge_switch")(s)),
    "discharge_switch": lambda s: bool(_x("discharge_switch")(s)),
    "runtime_min": _x("runtime_min"),
    "software_version": lambda s: s.firmware_version,
    "manufacturer_id": lambda s: s.serial_number,
    "protocol_version": _x("protocol_version"),
}
DEVICE: dict[str, Getter] = {
    "vendor_id": lambda s: s.model,
    "hw_version": lambda s: s.hardware_version,
    "sw_version": lambda s: s.firmware_version,
    "uptime_s": _x("uptime_s"),
    "power_on_count": _x("power_on_count"),
    "device_name": _x("device_name"),
    "manufacturing_date": lambda s: s.production_date.replace("-", "")[2:],
    "serial_number": lambda s: s.serial_number,
}
STATUS: dict[str, Getter] = {
    "cell_count": lambda s: s.cell_count,
    "cell_voltages": lambda s: s.cell_voltages,
    "voltage": lambda s: s.voltage,
    "current": lambda s: s.current,
    "balance_current": _x("balance_current"),
    "balancing_action": _x("balancing_action"),
    "soc": lambda s: s.soc,
    "capacity_remain": lambda s: s.remaining_ah,
    "capacity": lambda s: s.capacity_ah,
    "cycles": lambda s: s.cycles,
    "total_cycle_capacity": _x("cycle_capacity_ah"),
    "soh": lambda s: s.soh,
    "charge_fet": lambda s: s.charge_fet,
    "discharge_fet": lambda s: s.discharge_fet,
    "temp_mos": lambda s: s.mosfet_temperature,
    "temp_1": lambda s: s.temperatures[0],
    "temp_2": lambda s: s.temperatures[1],
    "temp_3": lambda s: s.temperatures[2],
    "temp_4": lambda s: s.temperatures[3],
    "errors_bitmask": _x("errors"),
    "temp_sensor_mask": _x("temperature_mask"),
    "heating": lambda s: s.heating,
    "delta_cell_voltage": lambda s: round(s.max_cell_voltage - s.min_cell_voltage, 3),
    "average_cell_voltage": lambda s: round(sum(s.cell_voltages) / s.cell_count, 3),
    "heater_current_a": _x("heater_current"),
}
CAN: dict[str, Getter] = {
    "voltage": lambda s: s.voltage,
    "current": lambda s: s.current,
    "soc": lambda s: s.soc,
    "discharge_time_h": _x("discharge_time_h"),
    "max_temp": _x("max_temperature"),
    "max_temp_no": _x("max_temperature_no"),
    "min_temp": _x("min_temperature"),
    "min_temp_no": _x("min_temperature_no"),
    "avg_temp": _x("average_temperature"),
    "capacity_remain": lambda s: s.remaining_ah,
    "capacity": lambda s: s.capacity_ah,
    "total_ah_field": _x("total_ah_field"),
    "cycles": lambda s: s.cycles,
    # the vendor's 2-bit levels, read back from the raw word
    "alarm_cell_overvoltage_level": lambda s: _x("alarm_word")(s) & 3,
    "alarm_pack_undervoltage_level": lambda s: _x("alarm_word")(s) >> 6 & 3,
    "alarm_soc_low_level": lambda s: _x("alarm_word")(s) >> 20 & 3,
}


def _check(sample: Sample, expected: dict[str, Any], table: dict[str, Getter],
           skip: frozenset[str] = frozenset()) -> None:
    for key, want in expected.items():
        if key in skip:
            continue
        assert key in table, f"no mapping for expected key {key!r}"
        got = table[key](sample)
        if isinstance(want, float) or (isinstance(want, list) and want and isinstance(want[0], float)):
            assert got == pytest.approx(want, abs=1e-6), key
        else:
            assert got == want, key


def _id(c: dict[str, Any]) -> str:
    return f"{c['variant']}:{c['source'][-40:]}"


@pytest.mark.parametrize("cap", captures("jk_rs485"), ids=_id)
def test_serial_capture(cap: dict[str, Any]) -> None:
    frame = bytes.fromhex(cap["response_hex"][0])
    sample = serial_codec.decode([frame])
    exp = cap["expected"]
    # values the sample model hides are checked on the raw register table
    tags = serial_codec.parse_tlv(serial_codec.validate(frame))
    assert tags[0x84] == exp["current_raw"]
    assert tags[0xB4] == exp["device_id"]
    assert tags[0xB5] == exp["production"] and sample.production_date == f"20{exp['production'][:2]}-{exp['production'][2:]}"
    assert sample.model is None  # "Input Us" is the unset placeholder, not a model name
    _check(sample, exp, SERIAL, frozenset({"current_raw", "device_id", "production"}))
    assert bytes.fromhex(cap["request_hex"]) == serial_codec.READ_ALL_REQUEST


@pytest.mark.parametrize("cap", captures("jk_ble"), ids=_id)
def test_ble_device_info_capture(cap: dict[str, Any]) -> None:
    sample = jk02.decode([bytes.fromhex(x) for x in cap["response_hex"]])
    _check(sample, cap["expected"], DEVICE)
    assert bytes.fromhex(cap["request_hex"]) == jk02.build_command(jk02.REQ_DEVICE_INFO)
    slots = jk02.firmware_slots(cap["expected"]["sw_version"])
    assert slots == (24 if cap["variant"].endswith("24s") else 32)


@pytest.mark.parametrize("cap", captures("jk_pb"), ids=_id)
def test_pb_capture(cap: dict[str, Any]) -> None:
    frames = [bytes.fromhex(x) for x in cap["response_hex"]]
    sample = pb_codec.decode(frames)
    exp = dict(cap["expected"])
    request = bytes.fromhex(cap["request_hex"])
    address, register = pb_codec.parse_trigger(request)
    assert request == pb_codec.build_trigger(address, register)
    assert sample.address == address == 3
    assert frames[0][4] == exp.pop("frame_type") == pb_codec.TRIGGER_RECORD[register]
    # the session's check: the acknowledge names the address and the trigger
    reply, _ = pb_codec.framer(b"".join(frames))
    assert reply is not None
    record = pb_codec.check_reply(reply, address, register)
    if register == pb_codec.TRIGGER_ABOUT:
        info = jk02.device_info(record)
        assert info["user_data"] == exp.pop("user_data")
        assert info["user_data_2"] == exp.pop("user_data_2")
        _check(sample, exp, DEVICE)
    else:
        _check(sample, exp, STATUS)


@pytest.mark.parametrize("cap", captures("jk_can"), ids=_id)
def test_can_capture(cap: dict[str, Any]) -> None:
    frames = [CanFrame.from_candump(x) for x in cap["response_hex"]]
    _check(can_codec.decode(frames), cap["expected"], CAN)


def test_can_alarm_levels_map_to_venus_levels() -> None:
    # 7F4#43002000: cell OV "general" -> warning, pack UV "serious" and SoC low "important" -> alarm
    sample = can_codec.decode([CanFrame.from_candump("7F4#4300200000000000")])
    assert sample.alarms is not None
    assert sample.alarms["high_cell_voltage"] == 1
    assert sample.alarms["low_voltage"] == 2
    assert sample.alarms["low_soc"] == 2
    assert sample.alarms["high_voltage"] == 0


def test_every_capture_is_covered() -> None:
    assert len(captures()) == len(captures("jk_rs485")) + len(captures("jk_ble")) + len(
        captures("jk_pb")) + len(captures("jk_can")) == 13
