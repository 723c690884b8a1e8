"""Hook implementations of bmshost-transport-serial."""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import TransportRegistry, TransportSpec


@hookimpl
def bmshost_register_transports(registry: TransportRegistry) -> None:
    registry.add(
        TransportSpec(
            name="serial",
            schemes=("serial", "tcp", "socket", "rfc2217"),
            kind="stream",
            factory="bmshost_transport_serial.links:open_link",
            description="serial ports (pyserial), raw TCP and RFC 2217 RS485 gateways",
        )
    )
