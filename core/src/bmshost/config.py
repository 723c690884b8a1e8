"""The configuration file (``bmshost.toml``): core schema and validation against the plugins.

Validation runs in two phases. ``parse_config`` checks the core keys and says which plugins the
file needs (so only those get imported); ``bind_config`` then checks every driver, variant, port
scheme, driver option, ``[control.*]`` and ``[sinks.*]`` table against what those plugins
registered. Any problem is a ``ConfigError`` naming the key path; nothing starts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from bmshost.errors import ConfigError
from bmshost.options import structure
from bmshost.plugins import Selection
from bmshost.registry import Registries
from bmshost.url import LinkUrl, parse_link_url

_positive = attrs.validators.gt(0.0)


def _level(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError(
            f"'{attribute.name}' must be debug, info, warning, error or critical, not {value!r}"
        )


@attrs.define(kw_only=True)
class HostOptions:
    poll_interval: float = attrs.field(default=1.0, validator=_positive)  # s
    slow_poll_interval: float = attrs.field(default=60.0, validator=_positive)  # s
    request_timeout: float = attrs.field(default=1.0, validator=_positive)  # s per request
    retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    stale_after: float = attrs.field(default=10.0, validator=_positive)  # s without a good read
    reconnect_min: float = attrs.field(default=1.0, validator=_positive)  # back-off start, s
    reconnect_max: float = attrs.field(default=60.0, validator=_positive)  # back-off cap, s
    state_dir: str = ""  # default: $BMSHOST_STATE_DIR or ~/.local/state/bmshost
    log_level: str = attrs.field(default="info", validator=_level)
    log_levels: dict[str, str] = attrs.field(  # logger name -> level
        factory=dict, validator=attrs.validators.deep_mapping(attrs.validators.instance_of(str), _level)
    )


@attrs.define(kw_only=True)
class PluginsOptions:
    enable: list[str] | None = None  # allow-list; None = all installed
    disable: list[str] = attrs.field(factory=list)


@attrs.define(kw_only=True)
class BatteryConfig:
    """One ``[[batteries]]`` table. Keys the core does not know go to the driver's options."""

    driver: str
    port: str
    variant: str | None = None
    address: int | None = None
    name: str | None = None
    poll_interval: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_positive)
    )
    options: Any = None  # the driver's options instance, filled by bind_config
    url: LinkUrl | None = None  # parsed port


_BATTERY_CORE_KEYS = {f.name for f in attrs.fields(BatteryConfig)} - {"options", "url"}


@attrs.define(kw_only=True)
class Config:
    host: HostOptions = attrs.field(factory=HostOptions)
    plugins: PluginsOptions = attrs.field(factory=PluginsOptions)
    batteries: list[BatteryConfig] = attrs.field(factory=list)
    control: dict[str, Any] = attrs.field(factory=dict)  # section -> raw table, then options
    sinks: dict[str, Any] = attrs.field(factory=dict)  # name -> raw table, then options
    transports: dict[str, Any] = attrs.field(factory=dict)  # name -> raw table, then options
    battery_extras: list[dict[str, Any]] = attrs.field(factory=list)  # driver keys, per battery
    source: str = "<memory>"

    def selection(self) -> Selection:
        # a configured [transports.<name>] loads that transport (its name is one of its schemes)
        # so that a typo in its options is reported even before a battery uses it
        schemes = set(self.transports)
        for b in self.batteries:
            if b.url is not None:
                schemes.add(b.url.scheme)
        return Selection(
            drivers=frozenset(b.driver for b in self.batteries),
            schemes=frozenset(schemes),
            sinks=frozenset(self.sinks),
        )


_TOP_KEYS = {"host", "plugins", "batteries", "control", "sinks", "transports"}


def parse_config(data: dict[str, Any], source: str = "<memory>") -> Config:
    """Phase 1: core keys only. Raises ``ConfigError`` with every problem found."""
    problems: list[str] = []
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"{key}: unknown key")
    host = _collect(problems, lambda: structure(data.get("host"), HostOptions, "host"))
    plugins = _collect(problems, lambda: structure(data.get("plugins"), PluginsOptions, "plugins"))
    batteries: list[BatteryConfig] = []
    extras: list[dict[str, Any]] = []
    raw_batteries = data.get("batteries", [])
    if not isinstance(raw_batteries, list):
        problems.append("batteries: expected an array of tables ([[batteries]])")
        raw_batteries = []
    for i, raw in enumerate(raw_batteries):
        path = f"batteries[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{path}: expected a table")
            continue
        core = {k: v for k, v in raw.items() if k in _BATTERY_CORE_KEYS}
        extra = {k: v for k, v in raw.items() if k not in _BATTERY_CORE_KEYS}
        battery = _collect(problems, lambda c=core, p=path: structure(c, BatteryConfig, p))
        if battery is None:
            continue
        try:
            battery.url = parse_link_url(battery.port)
        except ConfigError as exc:
            problems.extend(f"{path}.port: {p}" for p in exc.problems)
        batteries.append(battery)
        extras.append(extra)
    for section in ("control", "sinks", "transports"):
        value = data.get(section, {})
        if not isinstance(value, dict):
            problems.append(f"{section}: expected a table")
        else:
            for name, table in value.items():
                if not isinstance(table, dict):
                    problems.append(f"{section}.{name}: expected a table")
    if problems:
        raise ConfigError(problems)
    assert host is not None and plugins is not None
    return Config(
        host=host,
        plugins=plugins,
        batteries=batteries,
        control=dict(data.get("control", {})),
        sinks=dict(data.get("sinks", {})),
        transports=dict(data.get("transports", {})),
        battery_extras=extras,
        source=source,
    )


def _collect(problems: list[str], fn: Any) -> Any:
    try:
        return fn()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def bind_config(config: Config, registries: Registries) -> Config:
    """Phase 2: check the configuration against what the loaded plugins registered."""
    problems: list[str] = []
    drivers = registries.drivers
    installed = ", ".join(drivers.names()) or "none"
    seen_ids: dict[tuple[str, int | None], int] = {}
    for i, (battery, extra) in enumerate(zip(config.batteries, config.battery_extras, strict=True)):
        path = f"batteries[{i}]"
        spec = drivers.get(battery.driver)
        if spec is None:
            problems.append(f"{path}.driver: unknown driver {battery.driver!r} (installed: {installed})")
            continue
        try:
            variant = spec.variant(battery.variant)
        except KeyError as exc:
            problems.append(f"{path}.variant: {exc.args[0]}")
            continue
        assert battery.url is not None
        transport = registries.transports.for_scheme(battery.url.scheme)
        if transport is None:
            schemes = sorted(s for t in registries.transports for s in t.schemes)
            problems.append(
                f"{path}.port: no transport for {battery.url.scheme!r} links "
                f"(installed schemes: {', '.join(schemes) or 'none'})"
            )
        elif transport.kind not in variant.transports and battery.url.scheme not in ("sim", "replay"):
            problems.append(
                f"{path}.port: driver {spec.name!r} variant {variant.name!r} does not run on "
                f"{transport.kind} links ({battery.url.scheme}:)"
            )
        key = (battery.port, battery.address)
        if key in seen_ids:
            problems.append(
                f"{path}: same port and address as batteries[{seen_ids[key]}] "
                "(daisy-chained packs need distinct addresses)"
            )
        seen_ids[key] = i
        if spec.options is not None:
            battery.options = _collect(problems, lambda e=extra, p=path, s=spec: structure(e, s.options, p))
        elif extra:
            for key_name in sorted(extra):
                problems.append(f"{path}.{key_name}: unknown key")

    sections: dict[str, type | None] = {}
    for stage in registries.stages:
        sections.setdefault(stage.config_section, stage.options)
    bound_control: dict[str, Any] = {}
    for name, table in config.control.items():
        if name not in sections:
            known = ", ".join(sorted(sections)) or "none"
            problems.append(f"control.{name}: unknown control section (known: {known})")
            continue
        cls = sections[name]
        if cls is None:
            if table:
                problems.append(f"control.{name}: this stage takes no options")
            continue
        bound_control[name] = _collect(problems, lambda t=table, n=name, c=cls: structure(t, c, f"control.{n}"))
    for name, cls in sections.items():
        if name not in bound_control and cls is not None:
            bound_control[name] = _collect(problems, lambda n=name, c=cls: structure({}, c, f"control.{n}"))

    bound_sinks = _bind_named(problems, "sinks", "sink", config.sinks, registries.sinks)
    bound_transports = _bind_transports(problems, config, registries)
    if problems:
        raise ConfigError(problems)
    config.control = bound_control
    config.sinks = bound_sinks
    config.transports = bound_transports
    return config


def _bind_named(
    problems: list[str], section: str, what: str, tables: dict[str, Any], registry: Any
) -> dict[str, Any]:
    """``[<section>.<name>]`` tables → the named spec's options instance (None for a spec that
    takes none; a table for it, or an unknown name, is a problem)."""
    bound: dict[str, Any] = {}
    for name, table in tables.items():
        spec = registry.get(name)
        if spec is None:
            known = ", ".join(registry.names()) or "none"
            problems.append(f"{section}.{name}: unknown {what} (installed: {known})")
        elif spec.options is None:
            if table:
                problems.append(f"{section}.{name}: this {what} takes no options")
            bound[name] = None
        else:
            bound[name] = _collect(
                problems, lambda t=table, n=name, c=spec.options: structure(t, c, f"{section}.{n}")
            )
    return bound


def _bind_transports(problems: list[str], config: Config, registries: Registries) -> dict[str, Any]:
    """``[transports.<name>]`` tables → each loaded transport's options (defaults when absent)."""
    named = _bind_named(problems, "transports", "transport", config.transports, registries.transports)
    bound = {name: options for name, options in named.items() if options is not None}
    for spec in registries.transports:
        if spec.options is not None and spec.name not in bound and spec.name not in config.transports:
            bound[spec.name] = structure({}, spec.options, f"transports.{spec.name}")
    return bound


def load_config_file(path: str | Path) -> Config:
    """Read and parse (phase 1) a TOML file. Errors are ``ConfigError``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, source=str(p))
