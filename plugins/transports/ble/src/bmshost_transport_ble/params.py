"""Options of one ``ble://`` link: driver defaults (``VariantSpec.link_params``) overridden by the
URL's query parameters, checked once so a typo fails at start-up, not on the first poll."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from bmshost.errors import ConfigError
from bmshost.url import LinkUrl
from bmshost_transport_ble.uuids import uuid_alternatives

MODES = ("keep", "rotate")  # keep the connection, or connect-read-disconnect per poll cycle
_KNOWN = {
    "notify_uuid",
    "write_uuid",
    "service_uuid",
    "write_response",
    "mtu",
    "mode",
    "adapter",
    "connect_timeout",
    "idle_disconnect",
    "pair",
    "password",
}


@attrs.frozen(kw_only=True)
class BleParams:
    address: str
    notify_uuids: tuple[str, ...]  # alternatives, paired with write_uuids by position
    write_uuids: tuple[str, ...]
    service_uuid: str | None = None
    write_response: bool = False
    mtu: int = 23  # ATT MTU; writes are split into mtu - 3 byte chunks
    mode: str = "keep"
    adapter: str = "hci0"
    connect_timeout: float = 20.0
    idle_disconnect: float = 0.2  # rotate mode: release the slot after this long without traffic
    pair: bool = False


def _bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"ble: parameter {name}={value!r} must be true or false")


def _number(name: str, value: object, cast: type[int] | type[float], low: float) -> Any:
    try:
        number = cast(str(value))
    except (TypeError, ValueError):
        raise ConfigError(f"ble: parameter {name}={value!r} is not a number") from None
    if number < low:
        raise ConfigError(f"ble: parameter {name}={value!r} must be at least {low}")
    return number


def is_mac(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 6 and all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


def parse_params(url: LinkUrl, defaults: Mapping[str, Any] | None = None) -> BleParams:
    """Merge variant defaults with URL parameters; ``ConfigError`` names the bad key."""
    merged: dict[str, Any] = dict(defaults or {})
    merged.update(url.params)
    address = url.target.strip().strip("/")
    if not is_mac(address):
        raise ConfigError(f"{url.raw}: expected ble://AA:BB:CC:DD:EE:FF (a Bluetooth MAC address)")
    unknown = sorted(set(url.params) - _KNOWN)
    if unknown:
        raise ConfigError(f"{url.raw}: unknown parameter(s) {', '.join(unknown)}")
    if "notify_uuid" not in merged or "write_uuid" not in merged:
        raise ConfigError(
            f"{url.raw}: the driver gives no notify_uuid/write_uuid; add them to the URL"
        )
    try:
        notify = uuid_alternatives(merged["notify_uuid"])
        write = uuid_alternatives(merged["write_uuid"])
        service = (
            uuid_alternatives(merged["service_uuid"])[0] if merged.get("service_uuid") else None
        )
    except ValueError as exc:
        raise ConfigError(f"{url.raw}: {exc}") from None
    if not notify or len(notify) != len(write):
        raise ConfigError(
            f"{url.raw}: notify_uuid and write_uuid need the same number of alternatives"
        )
    mode = str(merged.get("mode", "keep"))
    if mode not in MODES:
        raise ConfigError(f"{url.raw}: mode={mode!r} must be one of {', '.join(MODES)}")
    return BleParams(
        address=address.upper(),
        notify_uuids=notify,
        write_uuids=write,
        service_uuid=service,
        write_response=_bool("write_response", merged.get("write_response", False)),
        mtu=_number("mtu", merged.get("mtu", 23), int, 23),
        mode=mode,
        adapter=str(merged.get("adapter", "hci0")),
        connect_timeout=_number(
            "connect_timeout", merged.get("connect_timeout", 20.0), float, 0.001
        ),
        idle_disconnect=_number("idle_disconnect", merged.get("idle_disconnect", 0.2), float, 0.0),
        pair=_bool("pair", merged.get("pair", False)),
    )
