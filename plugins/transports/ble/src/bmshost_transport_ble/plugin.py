"""Hook implementations of bmshost-transport-ble: the ``ble://`` link kind.

Import-light: bleak is imported only when a link is opened or a scan runs.
"""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import TransportRegistry, TransportSpec
from bmshost_transport_ble.options import BleTransportOptions


@hookimpl
def bmshost_register_transports(registry: TransportRegistry) -> None:
    registry.add(
        TransportSpec(
            name="ble",
            schemes=("ble",),
            kind="stream",
            factory="bmshost_transport_ble.link:open_ble_link",
            description="Bluetooth LE GATT (bleak): ble://AA:BB:CC:DD:EE:FF?mode=keep|rotate",
            options=BleTransportOptions,
        )
    )
