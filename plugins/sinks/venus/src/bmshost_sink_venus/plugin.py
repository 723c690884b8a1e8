"""Hook implementations of bmshost_sink_venus: the ``venus`` sink and ``bmshost venus``."""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import CommandRegistry, CommandSpec, SinkRegistry
from bmshost.sink import SinkSpec

from .options import VenusOptions


@hookimpl
def bmshost_register_sinks(registry: SinkRegistry) -> None:
    registry.add(
        SinkSpec(
            name="venus",
            factory="bmshost_sink_venus.sink:make_venus_sink",
            options=VenusOptions,
            description="Victron Venus OS: one com.victronenergy.battery D-Bus service per battery",
        )
    )


@hookimpl
def bmshost_register_commands(registry: CommandRegistry) -> None:
    registry.add(
        CommandSpec(
            name="venus",
            help="install, remove or check bmshost as a Venus OS service",
            configure="bmshost_sink_venus.cli:configure",
            run="bmshost_sink_venus.cli:run",
        )
    )
