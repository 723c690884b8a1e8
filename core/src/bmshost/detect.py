"""Which BMS family answers on a port: each installed variant's declared ``Probe``s, in turn.

A probe is a read-only request that the family's BMS answers and others ignore; its ``accepts``
check (or else the variant's ``recognise``) says whether the bytes that came back are that
family's reply. Probes that share link settings (baud rate) run on one opening of the port, and
after a probe nobody answered, late bytes are drained so they cannot be taken for the next
probe's reply. Detection writes nothing but those requests: it never switches a FET, never
resets a SoC, and never speaks Modbus address 0 to a JK PB pack (that turns it into bus master).

Only byte-stream links (serial, RS485, TCP gateways) are probed: a BLE device is identified from
its advertisement (``bmshost scan ble``), and CAN BMSes broadcast without being asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from bmshost.driver import DriverSpec, Probe, VariantSpec
from bmshost.errors import BmshostError
from bmshost.lazy import resolve
from bmshost.link import StreamLink
from bmshost.url import LinkUrl

log = logging.getLogger("bmshost.detect")

SETTLE = 0.1  # s to let a late answer arrive (and be dropped) before the next probe


@attrs.frozen(slots=True, kw_only=True)
class Candidate:
    driver: str
    variant: VariantSpec
    probe: Probe

    def link_params(self) -> dict[str, Any]:
        return {**self.variant.link_params, **self.probe.link_params}


@attrs.frozen(slots=True, kw_only=True)
class Found:
    driver: str
    variant: str
    address: int | None
    link_params: Mapping[str, Any]
    reply: bytes

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"driver": self.driver, "variant": self.variant}
        if self.address is not None:
            out["address"] = self.address
        out["link_params"] = dict(self.link_params)
        out["reply"] = self.reply.hex()
        return out

    def config_snippet(self, port: str) -> str:
        lines = ["[[batteries]]", f'driver = "{self.driver}"', f'variant = "{self.variant}"',
                 f'port = "{port}"']
        if self.address is not None:
            lines.append(f"address = {self.address}")
        return "\n".join(lines)


def candidates(drivers: Iterable[DriverSpec], only: Iterable[str] = ()) -> list[Candidate]:
    """Every stream probe of the given families (all installed ones unless ``only``)."""
    wanted = set(only)
    return [
        Candidate(driver=spec.name, variant=variant, probe=probe)
        for spec in drivers
        if not wanted or spec.name in wanted
        for variant in spec.variants
        if "stream" in variant.transports
        for probe in variant.probes
    ]


def _checker(candidate: Candidate) -> Callable[[bytes], bool] | None:
    accepts = candidate.probe.accepts
    if accepts is not None:
        check: Callable[[bytes], bool] = resolve(accepts) if isinstance(accepts, str) else accepts
        return check
    return candidate.variant.recognise


def _accepted(check: Callable[[bytes], bool], reply: bytes, who: str) -> bool:
    try:
        return bool(check(reply))
    except Exception as exc:  # a plugin's check that trips over a short reply means "not mine"
        log.debug("%s: reply check raised %s on %s", who, exc, reply.hex())
        return False


async def _probe(link: StreamLink, candidate: Candidate) -> bytes | None:
    """Send one probe; the reply if the family's check accepts it within the probe's timeout."""
    who = f"{candidate.driver}/{candidate.variant.name}"
    check = _checker(candidate)
    if check is None:
        log.warning("%s declares a probe but no way to check the reply; skipped", who)
        return None
    link.discard_input()
    await link.write(candidate.probe.request)
    reply = bytearray()
    deadline = time.monotonic() + candidate.probe.timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        chunk = await link.read_some(remaining)
        if chunk:
            reply += chunk
            if _accepted(check, bytes(reply), who):
                return bytes(reply)
    if reply:
        log.debug("%s: not accepted: %s", who, reply.hex())
    return None


async def _drain(link: StreamLink) -> None:
    end = time.monotonic() + SETTLE
    while (remaining := end - time.monotonic()) > 0:
        await link.read_some(remaining)
    link.discard_input()


LinkFactory = Callable[[LinkUrl, Mapping[str, Any]], Any]


async def detect(
    url: LinkUrl,
    make_link: LinkFactory,
    drivers: Iterable[DriverSpec],
    *,
    only: Iterable[str] = (),
    find_all: bool = False,
) -> list[Found]:
    """Probe ``url`` with every candidate; the first family that answers (or all with
    ``find_all``). ``LinkError`` (from the transport) when the port itself cannot be opened."""
    found: list[Found] = []
    # probes sharing link settings run on one opening of the port, in registration order
    groups: dict[str, list[Candidate]] = {}
    for c in candidates(drivers, only):
        groups.setdefault(repr(sorted(c.link_params().items())), []).append(c)
    for group in groups.values():
        params = group[0].link_params()
        link = make_link(url, params)
        if not isinstance(link, StreamLink):
            raise BmshostError(f"{url.raw}: only byte-stream ports can be probed")
        await link.open()
        try:
            for candidate in group:
                reply = await _probe(link, candidate)
                if reply is None:
                    await _drain(link)
                    continue
                found.append(
                    Found(
                        driver=candidate.driver,
                        variant=candidate.variant.name,
                        address=candidate.probe.address,
                        link_params=params,
                        reply=reply,
                    )
                )
                if not find_all:
                    return found
                await _drain(link)
        finally:
            await link.close()
        await asyncio.sleep(0)  # let the port's close settle before it is opened again
    return found
