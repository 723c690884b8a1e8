"""Links: framing over a stream, capture recording, replay matching rules, CAN frame text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmshost.errors import ConfigError, LinkTimeout
from bmshost.link import CanFrame, CaptureRecorder
from bmshost.testing import make_replay_link
from bmshost.transports.replay import load_capture


def _line(buf: bytes) -> tuple[bytes | None, int]:
    end = buf.find(b";")
    return (buf[: end + 1], end + 1) if end >= 0 else (None, 0)


def _capture(*exchanges: dict) -> dict:
    return {"format": "bmshost-capture/1", "driver": "x", "transport": "serial", "exchanges": list(exchanges)}


async def test_replay_answers_matching_tx_then_untargeted() -> None:
    link = make_replay_link(
        _capture({"tx": "01", "rx": ["613b"]}, {"rx": ["623b"]}, {"tx": "01", "rx": ["633b"]})
    )
    await link.open()
    assert await link.request(b"\x01", _line, 1.0) == b"a;"
    assert await link.request(b"\x01", _line, 1.0) == b"c;"  # first *unused* exchange with that tx
    assert await link.request(b"\x02", _line, 1.0) == b"b;"  # no match: next exchange without tx
    with pytest.raises(LinkTimeout):
        await link.request(b"\x02", _line, 1.0)  # unmatched write: no answer, at once


async def test_capture_records_requests_and_replies() -> None:
    link = make_replay_link(_capture({"tx": "01", "rx": ["613b"]}))
    link.recorder = CaptureRecorder()
    await link.open()
    await link.request(b"\x01", _line, 1.0)
    with pytest.raises(LinkTimeout):
        await link.request(b"\x05", _line, 0.1)
    assert link.recorder.exchanges == [{"tx": "01", "rx": ["613b"]}, {"tx": "05", "rx": []}]


async def test_replay_can_link() -> None:
    link = make_replay_link(_capture({"rx": ["18904001#0107"]}, {"tx": "18904001#", "rx": ["18904002#AA"]}))
    await link.open()
    await link.send(CanFrame(0x18904001, b""))  # type: ignore[union-attr]
    frame = await link.recv(0.1)  # type: ignore[union-attr]
    assert frame == CanFrame(0x18904002, b"\xaa")
    assert await link.recv(0.1) == CanFrame(0x18904001, b"\x01\x07")  # type: ignore[union-attr]
    assert await link.recv(0.1) is None  # type: ignore[union-attr]


def test_candump_text() -> None:
    frame = CanFrame.from_candump("18904001#01070000753002bc")
    assert frame.is_extended_id and frame.to_candump() == "18904001#01070000753002BC"
    assert CanFrame.from_candump("351#0102").is_extended_id is False
    for bad in ("351", "ZZZ#00", "351#0", "351#" + "00" * 9):
        with pytest.raises(ValueError):
            CanFrame.from_candump(bad)


def test_bad_capture_files(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        load_capture(p)
    p.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not a capture"):
        load_capture(p)
    p.write_text(json.dumps({"format": "bmshost-capture/1", "exchanges": [1]}))
    with pytest.raises(ConfigError, match=r"exchanges\[0\]"):
        load_capture(p)
