"""Port strings as users write them, parsed into a scheme, a target and parameters.

``/dev/ttyUSB0`` and ``COM3`` mean ``serial:``; everything else names its scheme:
``serial:///dev/ttyUSB0?baud=9600``, ``tcp://10.0.0.5:8899``, ``rfc2217://gw:4001``,
``ble://AA:BB:CC:DD:EE:FF``, ``can://can0?bitrate=250000``, ``sim:jbd?cells=16``,
``replay:capture.json``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import attrs

from bmshost.errors import ConfigError


@attrs.frozen(slots=True)
class LinkUrl:
    scheme: str
    target: str  # device path, host:port, MAC, interface, driver name or file
    params: dict[str, str] = attrs.field(factory=dict, hash=False)
    raw: str = ""

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def int_param(self, name: str, default: int) -> int:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return int(value, 0)
        except ValueError:
            raise ConfigError(f"{self.raw}: parameter {name}={value!r} is not an integer") from None

    def float_param(self, name: str, default: float) -> float:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{self.raw}: parameter {name}={value!r} is not a number") from None

    def __str__(self) -> str:
        return self.raw


def parse_link_url(text: str) -> LinkUrl:
    """Parse a port string. Raises ``ConfigError`` for an empty or malformed one."""
    raw = text.strip()
    if not raw:
        raise ConfigError("port: empty")
    if raw.startswith("/") or (raw.upper().startswith("COM") and raw[3:].isdigit()):
        return LinkUrl("serial", raw, {}, raw)
    if ":" not in raw:
        raise ConfigError(f"port {raw!r}: expected a device path or a URL like serial:///dev/ttyUSB0")
    scheme, rest = raw.split(":", 1)
    scheme = scheme.lower()
    if not scheme.isidentifier():
        raise ConfigError(f"port {raw!r}: bad scheme {scheme!r}")
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    if rest.startswith("//"):
        rest = rest[2:]
    params = dict(parse_qsl(query, keep_blank_values=True))
    return LinkUrl(scheme, rest, params, raw)
