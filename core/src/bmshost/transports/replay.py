"""``replay:`` links: play a capture file back as if the BMS were answering.

Matching rule (architecture brief §8): a written frame is answered with the ``rx`` of the first
unused exchange whose ``tx`` equals it, else with the next unused exchange that has no ``tx``; an
unmatched write gets no answer (the read times out at once: nothing can ever arrive).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bmshost.errors import ConfigError, LinkError, LinkTimeout
from bmshost.link import CanFrame, CanLink, StreamLink
from bmshost.url import LinkUrl

CAPTURE_FORMAT = "bmshost-capture/1"


def load_capture(path: str | Path) -> dict[str, Any]:
    """Read and check a capture file. Raises ``ConfigError`` naming the problem."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read capture ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != CAPTURE_FORMAT:
        raise ConfigError(f"{p}: not a capture (expected \"format\": \"{CAPTURE_FORMAT}\")")
    exchanges = data.get("exchanges")
    if not isinstance(exchanges, list):
        raise ConfigError(f"{p}: \"exchanges\" must be a list")
    for i, ex in enumerate(exchanges):
        if not isinstance(ex, dict) or not isinstance(ex.get("rx", []), list):
            raise ConfigError(f"{p}: exchanges[{i}] must be an object with an \"rx\" list")
    return data


class _Exchanges:
    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self._items = [(ex.get("tx"), list(ex.get("rx", []))) for ex in exchanges]
        self._used = [False] * len(self._items)

    def answer(self, tx: str | None) -> list[str] | None:
        if tx is not None:
            for i, (etx, rx) in enumerate(self._items):
                if not self._used[i] and etx is not None and etx.lower() == tx.lower():
                    self._used[i] = True
                    return rx
        for i, (etx, rx) in enumerate(self._items):
            if not self._used[i] and etx is None:
                self._used[i] = True
                return rx
        return None


class ReplayStreamLink(StreamLink):
    def __init__(self, url: LinkUrl, capture: Mapping[str, Any]) -> None:
        super().__init__(url)
        self._exchanges = _Exchanges(list(capture["exchanges"]))
        self._pending: deque[bytes] = deque()
        self._open = False

    @property
    def description(self) -> str:
        return f"Replay {self.url.target}"

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def _write(self, data: bytes) -> None:
        rx = self._exchanges.answer(data.hex())
        if rx:
            self._pending.extend(bytes.fromhex(x) for x in rx)

    async def _read(self, timeout: float) -> bytes:
        if self._pending:
            return self._pending.popleft()
        rx = self._exchanges.answer(None)  # unsolicited frames (notifications)
        if rx:
            self._pending.extend(bytes.fromhex(x) for x in rx)
            return self._pending.popleft() if self._pending else b""
        raise LinkTimeout(f"{self.description}: capture has no answer")


class ReplayCanLink(CanLink):
    def __init__(self, url: LinkUrl, capture: Mapping[str, Any]) -> None:
        super().__init__(url)
        self._exchanges = _Exchanges(list(capture["exchanges"]))
        self._pending: deque[CanFrame] = deque()
        self._open = False

    @property
    def description(self) -> str:
        return f"Replay CAN {self.url.target}"

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def send(self, frame: CanFrame) -> None:
        rx = self._exchanges.answer(frame.to_candump())
        if rx:
            self._pending.extend(CanFrame.from_candump(x) for x in rx)

    async def recv(self, timeout: float) -> CanFrame | None:
        if not self._pending:
            rx = self._exchanges.answer(None)
            if rx:
                self._pending.extend(CanFrame.from_candump(x) for x in rx)
        return self._pending.popleft() if self._pending else None


def open_replay_link(url: LinkUrl, params: Mapping[str, Any] | None = None) -> StreamLink | CanLink:
    capture = load_capture(url.target)
    is_can = capture.get("transport") == "can" or any(
        "#" in x for ex in capture["exchanges"] for x in ex.get("rx", [])
    )
    try:
        return ReplayCanLink(url, capture) if is_can else ReplayStreamLink(url, capture)
    except ValueError as exc:
        raise LinkError(f"{url.target}: bad frame in capture: {exc}") from None
