"""``bmshost scan ble``: list nearby devices and which installed driver claims each.

A driver declares advertisement matchers per variant in ``VariantSpec.ble_matchers`` (see
``bmshost.advertising``); no driver module is imported to scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bmshost_transport_ble.errors import explain
from bmshost_transport_ble.matcher import Advertisement, Claim

log = logging.getLogger("bmshost.ble")

Scanner = Callable[[float, str], Coroutine[Any, Any, list[Advertisement]]]


def driver_claims(registries: Any) -> list[Claim]:
    """The BLE matchers every installed driver variant declares (checked at registration)."""
    return [
        Claim(spec.name, variant.name, variant.ble_matchers)
        for spec in registries.drivers
        for variant in spec.variants
        if variant.ble_matchers
    ]


async def bleak_scan(timeout: float, adapter: str) -> list[Advertisement]:
    from bleak import BleakScanner

    found = await BleakScanner.discover(timeout=timeout, return_adv=True, adapter=adapter)
    return [
        Advertisement(
            address=str(device.address).upper(),
            local_name=adv.local_name or device.name,
            rssi=adv.rssi,
            service_uuids=tuple(adv.service_uuids),
            manufacturer_data=dict(adv.manufacturer_data),
        )
        for device, adv in found.values()
    ]


def match_all(ads: list[Advertisement], claims: list[Claim]) -> list[dict[str, Any]]:
    rows = []
    for adv in sorted(ads, key=lambda a: -(a.rssi if a.rssi is not None else -999)):
        owners = [f"{c.driver}/{c.variant}" for c in claims if c.claims(adv)]
        rows.append(
            {
                "address": adv.address,
                "name": adv.local_name,
                "rssi": adv.rssi,
                "drivers": owners,
                "port": f"ble://{adv.address}",
            }
        )
    return rows


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["ble"], help="what to scan (ble: Bluetooth LE devices)")
    parser.add_argument("--timeout", type=float, default=8.0, help="seconds to listen (default 8)")
    parser.add_argument("--adapter", default="hci0", help="Bluetooth adapter (default hci0)")
    parser.add_argument("--all", action="store_true", help="also list devices no driver claims")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")


def run(args: argparse.Namespace, scanner: Scanner | None = None, registries: Any = None) -> int:
    if registries is None:
        from bmshost.plugins import load_plugins

        registries = load_plugins().registries
    claims = driver_claims(registries)
    try:
        ads: list[Advertisement] = asyncio.run((scanner or bleak_scan)(args.timeout, args.adapter))
    except Exception as exc:  # no adapter / no bus / no BlueZ: one clear line
        print(f"bmshost scan ble: {explain(exc, 'scan failed')}", file=sys.stderr)
        return 1
    rows = match_all(ads, claims)
    if not args.all:
        rows = [r for r in rows if r["drivers"]]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print(f"no {'' if args.all else 'supported '}BLE devices found in {args.timeout:g} s")
        return 0
    print(f"{'ADDRESS':17}  {'RSSI':>4}  {'NAME':24}  DRIVER")
    for row in rows:
        rssi = "" if row["rssi"] is None else str(row["rssi"])
        drivers = ", ".join(row["drivers"]) or "-"
        print(f"{row['address']:17}  {rssi:>4}  {(row['name'] or '')[:24]:24}  {drivers}")
    print('\nuse as: port = "ble://<ADDRESS>" with driver/variant from the DRIVER column')
    return 0
