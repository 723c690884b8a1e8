"""Options of the ``[sinks.venus]`` table."""

from __future__ import annotations

import re
from typing import Any

import attrs

_BUS_CHOICES = ("auto", "system", "session")
_NAME_ELEMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _bus(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in _BUS_CHOICES:
        raise ValueError(f"bus must be one of {', '.join(_BUS_CHOICES)}, not {value!r}")


def _prefix(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    # A D-Bus well-known name: dot-separated elements, none starting with a digit.
    if not _NAME_ELEMENT.match(value):
        raise ValueError(f"service_prefix {value!r} is not a valid D-Bus name prefix")


def _template(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    fields = dict.fromkeys(("driver", "model", "hardware", "port", "unique_id"), "x")
    try:
        value.format_map(fields)
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(
            f"product_name {value!r}: unknown placeholder or bad format ({exc})"
        ) from None


def _cell_format(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value not in (0, 1, 2, 3):
        raise ValueError("cell_data_format must be 0 (none), 1 (/Voltages), 2 (/Cell) or 3 (both)")


def _soc_reset(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("auto", "always", "never"):
        raise ValueError(f"soc_reset_paths must be auto, always or never, not {value!r}")


@attrs.define(kw_only=True)
class VenusOptions:
    """How the batteries appear on D-Bus.

    ``product_name`` is a template; ``{driver}``, ``{model}``, ``{hardware}``, ``{port}`` and
    ``{unique_id}`` are filled per battery.
    """

    bus: str = attrs.field(default="auto", validator=_bus)
    # An explicit bus address (unix:path=...) overrides ``bus``; for tests and unusual setups.
    bus_address: str = ""
    service_prefix: str = attrs.field(default="com.victronenergy.battery", validator=_prefix)
    product_name: str = attrs.field(default="bmshost {driver} {model}", validator=_template)
    cell_data_format: int = attrs.field(default=1, validator=_cell_format)
    # Settings writes (custom name, LastSeen) are collected for this long before one flash write.
    settings_write_delay: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    # Register a service without data after this long, so a BMS dead at boot is visible.
    register_without_sample_after: float = attrs.field(
        default=60.0, validator=attrs.validators.gt(0)
    )
    # How long a SetValue may wait for the battery to perform the write before answering 2.
    write_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    # Instance allocation: the localsettings service; without it a state file is used.
    use_localsettings: bool = True
    device_instance_base: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    soc_reset_paths: str = attrs.field(default="auto", validator=_soc_reset)
    # Venus' security note: BLE and MQTT links must not be used for shared voltage sense.
    mark_insecure: bool = True
    # A copy of each battery's control state (float state, calculated SoC, history) in
    # localsettings, keyed like the instance; the host's state file stays the primary copy.
    persist_state: bool = True
    # At most one ControlState write per this many seconds (the host hands a changed document
    # over at most once a minute; localsettings rewrites all of settings.xml for each write).
    state_write_interval: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))
    # /JsonData (spec §5.3): the whole service as one JSON string, rebuilt at most once per
    # json_data_interval and only when something changed.
    publish_json_data: bool = False
    json_data_interval: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    # /Info/ChargeModeDebug, ...Float, ...Bulk: the control pipeline explaining its decisions.
    charge_mode_debug: bool = False
