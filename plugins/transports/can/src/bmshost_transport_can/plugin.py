"""Hook implementations of bmshost-transport-can: the ``can://`` link kind.

Import-light: python-can is imported only when a link opens.
"""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import TransportRegistry, TransportSpec


@hookimpl
def bmshost_register_transports(registry: TransportRegistry) -> None:
    registry.add(
        TransportSpec(
            name="can",
            schemes=("can",),
            kind="can",
            factory="bmshost_transport_can.link:open_can_link",
            description="CAN bus (python-can): can://can0?bitrate=250000, "
            "can://<channel>?interface=<name>, bitrate=auto probes 250/500 kbit/s",
        )
    )
