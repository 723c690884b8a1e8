"""Options of one ``can://`` link, from the driver's defaults and the URL.

URL shape (documented in docs/transports.md)::

    can://<channel>[?interface=<name>][&bitrate=<bit/s>|auto][&filter=<id>:<mask>,...]

``can://can0?bitrate=250000`` is SocketCAN (the default interface); any python-can interface is
named with ``interface=``: ``can://PCAN_USBBUS1?interface=pcan&bitrate=500000``,
``can://test?interface=virtual``. ``bitrate=auto`` probes 250 and then 500 kbit/s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from bmshost.errors import ConfigError
from bmshost.url import LinkUrl

AUTO_BITRATES = (250_000, 500_000)
_KNOWN = {"interface", "bitrate", "filter", "probe_window"}


@attrs.frozen(kw_only=True)
class CanFilter:
    """Accept frames whose ``id & mask == can_id & mask`` (python-can's filter semantics)."""

    can_id: int
    can_mask: int
    extended: bool | None = None  # None: either frame format

    def accepts(self, arb_id: int, extended: bool) -> bool:
        if self.extended is not None and self.extended != extended:
            return False
        return (arb_id & self.can_mask) == (self.can_id & self.can_mask)

    def as_python_can(self) -> dict[str, Any]:
        out: dict[str, Any] = {"can_id": self.can_id, "can_mask": self.can_mask}
        if self.extended is not None:
            out["extended"] = self.extended
        return out


@attrs.frozen(kw_only=True)
class CanParams:
    channel: str
    interface: str = "socketcan"
    bitrate: int | None = None  # None: leave the interface as configured
    auto_bitrate: bool = False
    filters: tuple[CanFilter, ...] = ()
    probe_window: float = 1.0  # s of listening per candidate bitrate

    @property
    def bus_key(self) -> tuple[str, str]:
        return (self.interface, self.channel)


def parse_filters(value: Any, raw: str) -> tuple[CanFilter, ...]:
    """``"351:7F0,18FF50E5:1FFFFFFF"`` (hex id:mask) or a list of python-can filter dicts."""
    if value is None or value == "":
        return ()
    out: list[CanFilter] = []
    if isinstance(value, str):
        for part in value.split(","):
            ident, _, mask = part.strip().partition(":")
            can_id = int(ident, 16) if _hex(ident) else -1
            can_mask = (
                int(mask, 16) if mask and _hex(mask) else (0x1FFFFFFF if len(ident) > 3 else 0x7FF)
            )
            if can_id < 0 or (mask and not _hex(mask)) or can_id > 0x1FFFFFFF:
                raise ConfigError(f"{raw}: filter {part!r} must be hex ID or ID:MASK")
            out.append(CanFilter(can_id=can_id, can_mask=can_mask))
        return tuple(out)
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, CanFilter):
                out.append(item)
            elif isinstance(item, Mapping) and "can_id" in item and "can_mask" in item:
                out.append(
                    CanFilter(
                        can_id=int(item["can_id"]),
                        can_mask=int(item["can_mask"]),
                        extended=item.get("extended"),
                    )
                )
            else:
                raise ConfigError(f"{raw}: bad CAN filter {item!r}")
        return tuple(out)
    raise ConfigError(f"{raw}: bad CAN filters {value!r}")


def _hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return bool(text)


def parse_params(url: LinkUrl, defaults: Mapping[str, Any] | None = None) -> CanParams:
    """Merge variant defaults (``bitrate``, ``can_filters``) with URL parameters."""
    merged: dict[str, Any] = dict(defaults or {})
    unknown = sorted(set(url.params) - _KNOWN)
    if unknown:
        raise ConfigError(f"{url.raw}: unknown parameter(s) {', '.join(unknown)}")
    merged.update(url.params)
    channel = url.target.strip().strip("/")
    if not channel:
        raise ConfigError(f"{url.raw}: expected can://<channel>, e.g. can://can0?bitrate=250000")
    bitrate_value = merged.get("bitrate")
    auto = str(bitrate_value).lower() == "auto"
    bitrate: int | None = None
    if bitrate_value is not None and not auto:
        try:
            bitrate = int(bitrate_value)
        except ValueError:
            raise ConfigError(
                f"{url.raw}: bitrate={bitrate_value!r} must be bit/s or auto"
            ) from None
        if not 10_000 <= bitrate <= 1_000_000:
            raise ConfigError(f"{url.raw}: bitrate={bitrate} is outside 10000..1000000")
    filters = parse_filters(merged.get("filter", merged.get("can_filters")), url.raw)
    try:
        window = float(merged.get("probe_window", 1.0))
    except ValueError:
        raise ConfigError(f"{url.raw}: probe_window must be seconds") from None
    return CanParams(
        channel=channel,
        interface=str(merged.get("interface", "socketcan")),
        bitrate=bitrate,
        auto_bitrate=auto,
        filters=filters,
        probe_window=max(0.01, window),
    )
