"""``bmshost.detect`` with scripted byte streams: grouping, reply checks and their failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bmshost.capabilities import BASIC
from bmshost.detect import candidates, detect
from bmshost.driver import DriverSpec, Probe, VariantSpec
from bmshost.errors import BmshostError
from bmshost.link import CanFrame, CanLink, StreamLink
from bmshost.url import LinkUrl, parse_link_url


class ScriptedPort(StreamLink):
    """Answers each request from a table; records the link settings of every opening."""

    openings: list[dict[str, Any]] = []

    def __init__(self, url: LinkUrl, params: Mapping[str, Any], answers: dict[bytes, bytes]) -> None:
        super().__init__(url)
        self.params = dict(params)
        self.answers = answers
        self.pending = b""
        self._open = False

    async def open(self) -> None:
        self._open = True
        ScriptedPort.openings.append(self.params)

    async def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def _write(self, data: bytes) -> None:
        self.pending = self.answers.get(data, b"")

    async def _read(self, timeout: float) -> bytes:
        out, self.pending = self.pending, b""
        return out


def family(name: str, *probes: tuple[bytes, Any, int]) -> DriverSpec:
    return DriverSpec(
        name=name,
        variants=(
            VariantSpec(
                name="serial",
                transports=("stream",),
                capabilities=BASIC,
                session=object(),
                probes=tuple(
                    Probe(request=req, accepts=acc, link_params={"baud": baud}, timeout=0.05)
                    for req, acc, baud in probes
                ),
            ),
            VariantSpec(name="can", transports=("can",), capabilities=BASIC, session=object(),
                        probes=(Probe(request=b"x"),)),
        ),
    )


A = family("alpha", (b"A?", lambda r: r == b"A!", 9600))
B = family("beta", (b"B?", lambda r: r[5] == 1, 9600))  # IndexError on a short reply
C = family("gamma", (b"C?", lambda r: r.startswith(b"C"), 115200))


def port(answers: dict[bytes, bytes]) -> Any:
    def make(url: LinkUrl, params: Mapping[str, Any]) -> StreamLink:
        return ScriptedPort(url, params, answers)

    return make


URL = parse_link_url("/dev/ttyX")


async def test_first_answer_wins_and_settings_groups_share_one_opening() -> None:
    ScriptedPort.openings = []
    found = await detect(URL, port({b"C?": b"C!"}), [A, B, C])
    assert [(f.driver, f.variant, f.reply) for f in found] == [("gamma", "serial", b"C!")]
    assert ScriptedPort.openings == [{"baud": 9600}, {"baud": 115200}]


async def test_a_check_that_raises_means_not_mine() -> None:
    found = await detect(URL, port({b"B?": b"B", b"A?": b"A!"}), [B, A], find_all=True)
    assert [f.driver for f in found] == ["alpha"]


async def test_only_and_nothing_found() -> None:
    assert await detect(URL, port({b"A?": b"A!"}), [A, B, C], only=["beta", "gamma"]) == []


def test_can_variants_and_families_outside_only_are_not_candidates() -> None:
    assert [c.driver for c in candidates([A, B, C])] == ["alpha", "beta", "gamma"]
    assert [c.driver for c in candidates([A, B, C], only=["beta"])] == ["beta"]


async def test_a_can_port_is_refused_clearly() -> None:
    class Bus(CanLink):
        async def send(self, frame: CanFrame) -> None: ...
        async def recv(self, timeout: float) -> CanFrame | None:
            return None

        async def open(self) -> None: ...
        async def close(self) -> None: ...
        @property
        def is_open(self) -> bool:
            return True

    with pytest.raises(BmshostError, match="only byte-stream ports"):
        await detect(parse_link_url("can://can0"), lambda u, p: Bus(u), [A])
