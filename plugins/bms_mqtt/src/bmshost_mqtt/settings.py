"""Broker connection settings of an ``mqtt:`` link, parsed from the port URL.

``mqtt://HOST[:PORT]/TOPIC?param=value&...`` (``mqtts://`` turns TLS on, default port 8883).
Parameters: ``username``, ``password`` / ``password_file`` / ``password_env`` (prefer the last two:
a password written into the URL sits in the config file), ``client_id``, ``keepalive`` (s),
``protocol`` (``3.1.1`` or ``5``), ``qos`` (0-2), ``tls`` (1/0), ``ca``, ``cert``, ``key``,
``insecure`` (1: skip host-name verification), ``connect_timeout`` (s).

The password is never part of ``repr`` or any log line.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from bmshost.errors import ConfigError
from bmshost.url import LinkUrl

_KNOWN = frozenset(
    {"username", "password", "password_file", "password_env", "client_id", "keepalive",
     "protocol", "qos", "tls", "ca", "cert", "key", "insecure", "connect_timeout"}
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@attrs.frozen(kw_only=True)
class LinkSettings:
    host: str
    port: int
    topic: str
    username: str = ""
    password: str = attrs.field(default="", repr=False)
    client_id: str = ""
    keepalive: int = 60
    protocol: str = "3.1.1"
    qos: int = 0
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure: bool = False
    connect_timeout: float = 5.0

    @property
    def where(self) -> str:
        """Broker and topic as logs and ``/Mgmt/Connection`` show them (no credentials)."""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}/{self.topic}"


def _flag(url: LinkUrl, name: str, default: bool) -> bool:
    value = url.param(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{url.scheme} link: parameter {name}={value!r} must be 1 or 0")


def _password(url: LinkUrl) -> str:
    given = [p for p in ("password", "password_file", "password_env") if url.param(p) is not None]
    if len(given) > 1:
        raise ConfigError(f"{url.scheme} link: give only one of {', '.join(given)}")
    if url.param("password_file") is not None:
        path = Path(url.param("password_file") or "")
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{url.scheme} link: cannot read password_file {path}: {exc.strerror or exc}"
            ) from None
    if url.param("password_env") is not None:
        name = url.param("password_env") or ""
        if name not in os.environ:
            raise ConfigError(f"{url.scheme} link: environment variable {name!r} is not set")
        return os.environ[name]
    return url.param("password", "") or ""


def parse_settings(url: LinkUrl) -> LinkSettings:
    """Turn an ``mqtt:``/``mqtts:`` URL into settings; ``ConfigError`` names the problem."""
    unknown = sorted(set(url.params) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"{url.scheme} link: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN))})"
        )
    hostport, sep, topic = url.target.partition("/")
    if not sep or not topic:
        raise ConfigError(f"{url.scheme} link: expected {url.scheme}://HOST[:PORT]/TOPIC")
    if any(c in topic for c in "+#\0"):
        raise ConfigError(
            f"{url.scheme} link: topic {topic!r} must not contain wildcards (one battery per topic)"
        )
    tls = url.scheme == "mqtts" or _flag(url, "tls", False)
    host, colon, port_text = hostport.rpartition(":")
    if not colon:
        host, port_text = hostport, ""
    host = host.strip("[]")  # IPv6 literals
    if not host:
        raise ConfigError(f"{url.scheme} link: broker host missing")
    try:
        port = int(port_text) if port_text else (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"{url.scheme} link: port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{url.scheme} link: port {port} is outside 1..65535")
    protocol = url.param("protocol", "3.1.1") or "3.1.1"
    if protocol not in ("3.1.1", "5"):
        raise ConfigError(f"{url.scheme} link: protocol must be 3.1.1 or 5, not {protocol!r}")
    qos = url.int_param("qos", 0)
    if qos not in (0, 1, 2):
        raise ConfigError(f"{url.scheme} link: qos must be 0, 1 or 2")
    keepalive = url.int_param("keepalive", 60)
    if not 5 <= keepalive <= 3600:
        raise ConfigError(f"{url.scheme} link: keepalive must be 5..3600 s")
    connect_timeout = url.float_param("connect_timeout", 5.0)
    if not 0 < connect_timeout <= 120:
        raise ConfigError(f"{url.scheme} link: connect_timeout must be in (0, 120] s")
    for name in ("ca", "cert", "key"):
        path = url.param(name)
        if path and not Path(path).is_file():
            raise ConfigError(f"{url.scheme} link: {name} file {path!r} does not exist")
    if bool(url.param("cert")) != bool(url.param("key")):
        raise ConfigError(f"{url.scheme} link: a client certificate needs both cert and key")
    return LinkSettings(
        host=host,
        port=port,
        topic=topic,
        username=url.param("username", "") or "",
        password=_password(url),
        client_id=url.param("client_id", "") or "",
        keepalive=keepalive,
        protocol=protocol,
        qos=qos,
        tls=tls,
        ca_file=url.param("ca", "") or "",
        cert_file=url.param("cert", "") or "",
        key_file=url.param("key", "") or "",
        insecure=_flag(url, "insecure", False),
        connect_timeout=connect_timeout,
    )
