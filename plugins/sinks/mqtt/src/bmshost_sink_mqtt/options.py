"""``[sinks.mqtt]``: broker connection, topics, publishing policy, Home Assistant discovery.

Kept free of paho imports: the plugin module imports this class to register the sink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

_v = attrs.validators


def _topic_part(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
        raise ValueError(
            f"{attribute.name}: {value!r} must not contain + # or start/end with '/'"
        )


def _topic_prefix(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name}: must not be empty")
    _topic_part(instance, attribute, value)


def _protocol(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("3.1.1", "5"):
        raise ValueError(f"{attribute.name}: must be \"3.1.1\" or \"5\", not {value!r}")


def _file(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and not Path(value).is_file():
        raise ValueError(f"{attribute.name}: file {value!r} does not exist")


@attrs.define(kw_only=True)
class MqttSinkOptions:
    # -- connection --------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = attrs.field(default=1883, validator=[_v.ge(1), _v.le(65535)])
    client_id: str = ""  # default: bmshost-<hostname>
    username: str = ""
    password: str = attrs.field(default="", repr=False)  # prefer password_file
    password_file: str = attrs.field(default="", validator=_file)
    tls: bool = False
    ca_file: str = attrs.field(default="", validator=_file)  # empty: the system's CAs
    cert_file: str = attrs.field(default="", validator=_file)  # client certificate (mutual TLS)
    key_file: str = attrs.field(default="", validator=_file)
    tls_insecure: bool = False  # skip host-name verification (self-signed broker certificates)
    protocol: str = attrs.field(default="3.1.1", validator=_protocol)
    keepalive: int = attrs.field(default=60, validator=[_v.ge(5), _v.le(3600)])
    reconnect_min: float = attrs.field(default=1.0, validator=[_v.gt(0), _v.le(600)])
    reconnect_max: float = attrs.field(default=60.0, validator=[_v.gt(0), _v.le(3600)])
    qos: int = attrs.field(default=0, validator=[_v.ge(0), _v.le(2)])
    # -- topics and publishing ---------------------------------------------------------------
    topic_prefix: str = attrs.field(default="bmshost", validator=_topic_prefix)
    retain: bool = True
    min_interval: float = attrs.field(default=1.0, validator=[_v.ge(0), _v.le(3600)])  # s
    # Republish an unchanged state after this long so "t" shows the host is alive (0: never).
    max_interval: float = attrs.field(default=60.0, validator=[_v.ge(0), _v.le(86400)])
    per_value_topics: bool = False  # also <prefix>/<battery>/<value>, e.g. .../voltage
    commands: bool = True  # subscribe to <prefix>/<battery>/set/<control>
    # -- Home Assistant ----------------------------------------------------------------------
    discovery: bool = True  # only when discovery_prefix is set
    discovery_prefix: str = attrs.field(default="homeassistant", validator=_topic_part)

    def __attrs_post_init__(self) -> None:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must not be smaller than reconnect_min")
        if self.password and self.password_file:
            raise ValueError("give password or password_file, not both")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("a client certificate needs both cert_file and key_file")
        if (self.ca_file or self.cert_file) and not self.tls:
            raise ValueError("ca_file/cert_file given but tls = false")

    @property
    def discovery_enabled(self) -> bool:
        return self.discovery and bool(self.discovery_prefix)

    def read_password(self) -> str:
        """The password from ``password`` or ``password_file`` (read at connect time)."""
        if self.password_file:
            return Path(self.password_file).read_text(encoding="utf-8").strip()
        return self.password
