"""The core's own plugins, registered through the same hooks as third-party ones."""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import SinkRegistry, StageRegistry, TransportRegistry
from bmshost.sink import SinkSpec


@hookimpl
def bmshost_register_transports(registry: TransportRegistry) -> None:
    from bmshost.registry import TransportSpec

    registry.add(
        TransportSpec(
            name="sim",
            schemes=("sim",),
            kind="any",
            factory="bmshost.transports.sim:open_sim_link",
            description="in-process simulated BMS: sim:<driver>?variant=..&cells=16",
        )
    )
    registry.add(
        TransportSpec(
            name="replay",
            schemes=("replay",),
            kind="any",
            factory="bmshost.transports.replay:open_replay_link",
            description="plays back a capture file: replay:/path/capture.json",
        )
    )


@hookimpl
def bmshost_register_sinks(registry: SinkRegistry) -> None:
    from bmshost.sinks.console import ConsoleOptions

    registry.add(
        SinkSpec(
            name="console",
            factory="bmshost.sinks.console:make_console_sink",
            options=ConsoleOptions,
            description="live terminal view, or one JSON object per sample (--json)",
        )
    )


@hookimpl
def bmshost_register_stages(registry: StageRegistry) -> None:
    from bmshost.control.registration import register_stages

    register_stages(registry)
