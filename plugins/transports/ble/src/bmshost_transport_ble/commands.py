"""Hook implementations of bmshost-transport-ble: the ``bmshost scan ble`` command."""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import CommandRegistry, CommandSpec


@hookimpl
def bmshost_register_commands(registry: CommandRegistry) -> None:
    registry.add(
        CommandSpec(
            name="scan",
            help="scan ble: list nearby Bluetooth LE devices and the drivers that claim them",
            configure="bmshost_transport_ble.scan:configure",
            run="bmshost_transport_ble.scan:run",
        )
    )
