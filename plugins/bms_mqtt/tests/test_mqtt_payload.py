"""The payload parsers: the reference examples, every rejection rule, and fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_mqtt.payload import (
    Offline,
    detect_format,
    load_object,
    parse_bmshost,
    parse_generic,
    parse_payload,
)

CAPTURES = str(Path(__file__).parent / "fixtures" / "generic_mqtt.json")


def test_minimal_example_becomes_the_expected_sample(example_minimal: bytes) -> None:
    s = parse_payload(example_minimal)
    assert s.voltage == 13.2
    assert s.current == 5.2
    assert s.soc == 45.87
    assert s.capacity_ah == 100.0
    assert s.serial_number == "SN12345678"
    assert s.temperatures == [25.5]
    assert s.charge_fet is True and s.discharge_fet is True
    assert s.cell_voltages == [3.3, 3.31, 3.29, 3.3]
    assert s.cell_balancing is None  # the example gives no balance flags: unknown, not False
    assert s.power == pytest.approx(13.2 * 5.2, abs=1e-3)  # derived, as for every driver
    # Nothing the message did not say is made up.
    for field in ("soh", "remaining_ah", "mosfet_temperature", "alarms", "balance_fet",
                  "bms_charge_current_limit", "heating", "extra"):
        assert getattr(s, field) is None, field


def test_full_example_becomes_the_expected_sample(example_full: bytes) -> None:
    s = parse_payload(example_full)
    assert s.cell_voltages == [3.3, 3.31, 3.29, 3.3]
    assert s.cell_balancing == [False, True, False, False]
    assert s.temperatures == [25.5, 25.6, 25.7, 25.8]
    assert s.mosfet_temperature == 30.0
    assert s.remaining_ah == 80.0
    assert s.soh == 98.5
    assert s.balance_fet is True
    assert s.heating is False
    assert s.bms_charge_current_limit == 50.0
    assert s.bms_discharge_current_limit == 60.0
    assert s.bms_charge_voltage_limit == 14.6
    assert s.bms_discharge_voltage_limit == 10.0
    assert s.hardware_version == "v1.2"
    assert s.production_date == "2025-12-25"
    assert s.alarms is not None and set(s.alarms.values()) == {0}
    assert s.extra is not None
    assert s.extra["custom_field"] == "Example custom value"
    assert s.extra["heater_fet"] is True
    assert s.extra["heater_power"] == 27.06
    assert s.extra["history"]["charge_cycles"] == 120


def test_examples_match_the_capture_expectations() -> None:
    with open(CAPTURES, encoding="utf-8") as fh:
        entries = json.load(fh)
    for entry in entries:
        s = parse_payload(bytes.fromhex(entry["response_hex"][0]))
        exp = entry["expected"]
        assert s.cell_count == exp["cell_count"]
        assert s.capacity_ah == exp["capacity"]
        assert s.serial_number == exp["serial_number"]
        assert (s.voltage, s.current, s.soc) == (exp["voltage"], exp["current"], exp["soc"])
        assert s.temperatures is not None and s.temperatures[0] == exp["temperature_1"]
        assert (s.charge_fet, s.discharge_fet) == (exp["charge_fet"], exp["discharge_fet"])
        assert s.cell_voltages == exp["cell_voltages_V"]
        balance = exp["cell_balance"]
        assert s.cell_balancing == (None if None in balance else balance)
        if "protection_keys_set" in exp:
            assert s.alarms is not None and sorted(s.alarms) == exp["protection_keys_set"]


def _minimal(example_minimal: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(example_minimal)
    return data


REQUIRED = ("cell_count", "capacity", "serial_number", "voltage", "current", "soc",
            "temperature_1", "charge_fet", "discharge_fet", "cells")


@pytest.mark.parametrize("key", REQUIRED)
def test_missing_required_key_is_rejected(example_minimal: bytes, key: str) -> None:
    data = _minimal(example_minimal)
    del data[key]
    with pytest.raises(FrameError, match=key):
        parse_payload(json.dumps(data))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cell_count", 4.0),  # strict integer, as the reference
        ("cell_count", True),
        ("voltage", "13.2"),
        ("voltage", True),
        ("current", [1]),
        ("soc", None),  # null for a required key counts as missing
        ("serial_number", 12345678),
        ("charge_fet", 1),
        ("discharge_fet", "true"),
        ("cells", {"1": {"voltage": 3.3}}),  # object form: rejected (the reference ignored it)
        ("cells", [{"voltage": 3.3}] * 3),  # length differs from cell_count
        ("cells", [{"voltage": "3.3"}] * 4),
        ("cells", [{"voltage": 3.3, "balance": 0}] * 4),
        ("cells", [3.3, 3.3, 3.3, 3.3]),
        ("soh", "98"),
        ("temperature_mos", False),
        ("protection", {"high_voltage": 3}),
        ("protection", {"high_voltage": "1"}),
        ("protection", [0]),
        ("history", [1]),
        ("history", {"charge_cycles": "many"}),
        ("hardware_version", 1.2),
        ("balance_fet", "yes"),
    ],
)
def test_wrong_type_is_rejected(example_minimal: bytes, key: str, value: Any) -> None:
    data = _minimal(example_minimal)
    data[key] = value
    with pytest.raises(FrameError, match=key.split("_")[0]):
        parse_payload(json.dumps(data))


@pytest.mark.parametrize(
    ("key", "value"),
    [("soc", 100.5), ("soc", -1), ("voltage", -13.2), ("soh", 101),
     ("max_battery_charge_current", -5), ("temperature_1", 1000.0), ("capacity", -1)],
)
def test_impossible_values_are_rejected(example_minimal: bytes, key: str, value: float) -> None:
    data = _minimal(example_minimal)
    data[key] = value
    with pytest.raises(FrameError, match=key):
        parse_payload(json.dumps(data))


@pytest.mark.parametrize("text", ['{"voltage": NaN}', '{"voltage": Infinity}', "-Infinity"])
def test_non_finite_numbers_are_rejected(text: str) -> None:
    with pytest.raises(FrameError, match="not a number"):
        load_object(text)


@pytest.mark.parametrize(
    "payload",
    [b"", b"   ", b"{", b"[1, 2]", b"42", b'"text"', b"\xff\xfe", b"null", b"{'a': 1}",
     b"[" * 5000 + b"]" * 5000],
)
def test_malformed_json_is_rejected(payload: bytes) -> None:
    with pytest.raises(FrameError):
        parse_payload(payload)


def test_oversized_payload_is_rejected() -> None:
    with pytest.raises(FrameError, match="too large"):
        parse_payload(b" " * (300 * 1024))


def test_unknown_alarm_and_history_keys_are_ignored(example_minimal: bytes) -> None:
    data = _minimal(example_minimal)
    data["protection"] = {"high_voltage": 2, "made_up": 2}
    data["history"] = {"charge_cycles": 7, "made_up": "x"}
    s = parse_payload(json.dumps(data))
    assert s.alarms == {"high_voltage": 2}
    assert s.extra == {"history": {"charge_cycles": 7.0}}


def test_partial_balance_flags_mean_unknown(example_minimal: bytes) -> None:
    data = _minimal(example_minimal)
    data["cells"][1]["balance"] = True
    assert parse_payload(json.dumps(data)).cell_balancing is None


def test_format_detection_and_forcing(example_minimal: bytes) -> None:
    assert detect_format(_minimal(example_minimal)) == "generic"
    assert detect_format({"online": True}) == "bmshost"
    with pytest.raises(FrameError, match="online"):
        parse_payload(example_minimal, "bmshost")
    with pytest.raises(FrameError, match="unknown payload format"):
        parse_payload(example_minimal, "xml")


def _full_sample() -> Sample:
    return Sample(
        voltage=53.1, current=-12.5, power=-663.75, soc=81.5, soh=99.0, capacity_ah=280.0,
        remaining_ah=228.2, cycles=42, cell_voltages=[3.3 + i / 1000 for i in range(16)],
        cell_balancing=[i == 3 for i in range(16)], temperatures=[21.0, 22.5],
        mosfet_temperature=30.0, charge_fet=True, discharge_fet=False, balance_fet=True,
        heating=False, bms_charge_current_limit=100.0, bms_discharge_current_limit=150.0,
        alarms={"low_voltage": 0, "high_cell_voltage": 1}, serial_number="ABC",
        hardware_version="hw1", firmware_version="fw2", model="JBD-SP04S020",
        production_date="2024-01-02", address=1, extra={"raw": 5},
    )


def test_bmshost_state_round_trips_every_sample_field() -> None:
    sample = _full_sample()
    state = {"t": 1.0, "online": True, "stale": False, **sample.to_json_dict(),
             "limits": {"cvl": 55.2}, "derived": {"soc": 80.0}}
    assert parse_payload(json.dumps(state)) == sample


def test_bmshost_state_of_an_offline_battery_is_not_data() -> None:
    state = {"t": 1.0, "online": False, "stale": False, "voltage": 53.0}
    with pytest.raises(Offline):
        parse_bmshost(state)
    with pytest.raises(Offline):
        parse_bmshost({"online": True, "stale": True})


@pytest.mark.parametrize(
    ("key", "value"),
    [("cell_voltages", [3.3, "x"]), ("cell_voltages", 3.3), ("cell_balancing", [1, 0]),
     ("alarms", {"low_voltage": 5}), ("cycles", 1.5), ("model", 5), ("extra", [1]),
     ("temperatures", [None])],
)
def test_bmshost_state_with_wrong_types_is_rejected(key: str, value: Any) -> None:
    with pytest.raises(FrameError, match=key):
        parse_bmshost({"online": True, key: value})


# -- fuzzing: random and mutated payloads raise only FrameError -------------------------------


def _check(payload: bytes | str) -> None:
    try:
        sample = parse_payload(payload)
    except FrameError:
        return
    assert isinstance(sample, Sample)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_frame_error(payload: bytes) -> None:
    _check(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                  max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_examples_raise_only_frame_error(data: st.DataObject) -> None:
    with open(CAPTURES, encoding="utf-8") as fh:
        entries = json.load(fh)
    base = json.loads(bytes.fromhex(data.draw(st.sampled_from(entries))["response_hex"][0]))
    for _ in range(data.draw(st.integers(1, 4))):
        key = data.draw(st.sampled_from([*sorted(base), "cells", "protection", "history",
                                         "online", "stale"]))
        action = data.draw(st.sampled_from(["drop", "replace", "cell"]))
        if action == "drop":
            base.pop(key, None)
        elif action == "replace":
            base[key] = data.draw(json_values)
        elif isinstance(base.get("cells"), list) and base["cells"]:
            i = data.draw(st.integers(0, len(base["cells"]) - 1))
            base["cells"][i] = data.draw(json_values)
    _check(json.dumps(base, allow_nan=True))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["online", "stale", "voltage", "cell_voltages",
                                        "alarms", "cycles", "extra", "cell_balancing"]),
                       json_values, max_size=8))
def test_mutated_bmshost_states_raise_only_frame_error(state: dict[str, Any]) -> None:
    _check(json.dumps(state, allow_nan=True))


def test_generic_parse_is_pure(example_full: bytes) -> None:
    data = json.loads(example_full)
    before = json.dumps(data, sort_keys=True)
    parse_generic(data)
    assert json.dumps(data, sort_keys=True) == before
