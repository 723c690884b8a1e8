"""The JBD serial codec against every captured frame and the spec's worked examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmshost.errors import FrameError
from bmshost_jbd import codec

CAPTURES = json.loads((Path(__file__).parent / "fixtures" / "jbd.json").read_text())
SERIAL_FRAMES = [c for c in CAPTURES if c["variant"] in ("jbd_uart", "jbd_ble") and c["response_hex"][0].startswith("dd")]


def _ids(c: dict) -> str:
    return f"{c['variant']}-{c['request_hex']}-{c['response_hex'][0][:12]}"


@pytest.mark.parametrize("capture", SERIAL_FRAMES, ids=_ids)
def test_capture_decodes_to_expected(capture: dict) -> None:
    frame = bytes.fromhex(capture["response_hex"][0])
    sample = codec.parse_response(frame)
    exp = capture["expected"]
    if "voltage" in exp:
        assert sample.voltage == pytest.approx(exp["voltage"])
        assert sample.current == pytest.approx(exp["current"])
        assert sample.remaining_ah == pytest.approx(exp["capacity_remain"])
        assert sample.capacity_ah == pytest.approx(exp["capacity"])
        assert sample.cycles == exp["cycles"]
        assert sample.production_date == exp["production_date"]
        assert sample.soc == exp["soc"]
        assert sample.charge_fet is exp["charge_fet"]
        assert sample.discharge_fet is exp["discharge_fet"]
        assert sample.firmware_version == exp["sw_version"]
        assert sample.extra is not None
        assert sample.extra["cell_count"] == exp["cell_count"]
        assert sample.extra["protection_bits"] == exp["protection_bits"]
        assert sample.extra["balance_bits"] == exp["balance_bits"]
        # With two or more NTCs the first is the MOSFET sensor; all NTC values must survive.
        ntcs = ([sample.mosfet_temperature] if sample.mosfet_temperature is not None else []) + (sample.temperatures or [])
        assert ntcs == pytest.approx(exp["temperatures"])
        assert len(ntcs) == exp["ntc_count"]
        balancing = [i + 1 for i, b in enumerate(sample.cell_balancing or []) if b]
        assert balancing == exp["balancing_cells"]
    if "cell_voltages" in exp:
        assert sample.cell_voltages == pytest.approx(exp["cell_voltages"])
    if "hardware_version" in exp:
        assert sample.hardware_version == exp["hardware_version"]
    if "error_counts" in exp:
        assert sample.extra == {"error_counts": exp["error_counts"]}
    if "ack_status" in exp:
        assert capture["request_hex"] == codec.mos_control(
            charge_off=bool(exp["value"] & 1), discharge_off=bool(exp["value"] & 2)
        ).hex()
        assert sample.to_json_dict() == {}


@pytest.mark.parametrize(
    ("frame", "hexstr"),
    [
        (codec.READ_BASIC, "dda50300fffd77"),
        (codec.READ_CELLS, "dda50400fffc77"),
        (codec.READ_HARDWARE, "dda50500fffb77"),
        (codec.READ_ERROR_COUNTS, "dda5aa00ff5677"),
        (codec.mos_control(True, False), "dd5ae1020001ff1c77"),
        (codec.mos_control(False, True), "dd5ae1020002ff1b77"),
        (codec.mos_control(False, False), "dd5ae1020000ff1d77"),
        (codec.FACTORY_ENTER, "dd5a00025678ff3077"),
        (codec.FACTORY_EXIT_SAVE, "dd5a01022828ffad77"),
        (codec.FACTORY_EXIT_DISCARD, "dd5a01020000fffd77"),
    ],
)
def test_spec_request_examples(frame: bytes, hexstr: str) -> None:
    assert frame.hex() == hexstr


def test_write_ack_parses_to_empty_sample() -> None:
    assert codec.parse_response(bytes.fromhex("dde10000000077")).to_json_dict() == {}


def test_protection_bits_become_alarms() -> None:
    base = bytearray.fromhex(SERIAL_FRAMES[0]["response_hex"][0])
    data = bytearray(base[4:-3])
    data[16:18] = (1 << 0 | 1 << 10).to_bytes(2, "big")  # cell OV and short circuit
    frame = codec.START.to_bytes(1, "big") + bytes((3, 0, len(data))) + data
    frame += codec.checksum(bytes((0, len(data))) + data).to_bytes(2, "big") + b"\x77"
    sample = codec.parse_response(frame)
    assert sample.alarms is not None
    assert sample.alarms["high_cell_voltage"] == 2
    assert sample.alarms["high_discharge_current"] == 2
    assert sample.alarms["low_cell_voltage"] == 0
    assert sample.extra is not None and sample.extra["protections"] == ["cell_overvoltage", "short_circuit"]


@pytest.mark.parametrize(
    ("hexstr", "reason"),
    [
        ("dd0400080f450f3d0f370f3dfec777", "checksum"),
        ("dd0400090f450f3d0f370f3dfec677", "length"),
        ("dd04800077", "too short"),
        ("dd048000ff8077", "error reply"),
        ("de0400080f450f3d0f370f3dfec677", "DD"),
    ],
)
def test_bad_frames_raise_frame_error(hexstr: str, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        codec.parse_response(bytes.fromhex(hexstr))


def test_framer_skips_junk_and_waits_for_complete_frame() -> None:
    frame = bytes.fromhex("dd0400080f450f3d0f370f3dfec677")
    assert codec.find_frame(b"\x00\x11" + frame[:5]) == (None, 2)
    got, used = codec.find_frame(b"\x00\x11" + frame + b"\xdd")
    assert got == frame and used == 2 + len(frame)
    # a DD that is not a frame start is skipped one byte at a time
    assert codec.find_frame(b"\xdd\x04\x00\x00\x00\x00\x00\x00")[0] is None


def test_decode_merges_frames_of_one_read() -> None:
    sample = codec.decode([bytes.fromhex(SERIAL_FRAMES[0]["response_hex"][0]), bytes.fromhex("dd0400080f450f3d0f370f3dfec677")])
    assert sample.voltage == pytest.approx(58.88)
    assert sample.cell_voltages == pytest.approx([3.909, 3.901, 3.895, 3.901])
    assert sample.power == pytest.approx(0.0)
