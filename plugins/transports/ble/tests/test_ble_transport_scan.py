"""``bmshost scan ble``, advertisement matchers, plugin registration and error messages."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bmshost.driver import DriverSpec, VariantSpec
from bmshost.plugins import load_plugins
from bmshost.registry import Registries
from bmshost_transport_ble import scan
from bmshost_transport_ble.errors import explain
from bmshost_transport_ble.matcher import Advertisement, BleMatcher, to_matchers


def test_matcher_fields_must_all_match() -> None:
    m = BleMatcher(service_uuid="ff00", oui="a4-c1-38")
    assert m.matches(
        Advertisement(
            address="A4:C1:38:11:22:33", service_uuids=("0000ff00-0000-1000-8000-00805f9b34fb",)
        )
    )
    assert not m.matches(Advertisement(address="A4:C1:37:11:22:33", service_uuids=("ff00",)))
    assert not m.matches(Advertisement(address="A4:C1:38:11:22:33"))
    assert BleMatcher(local_name_prefix="JBD-").matches(
        Advertisement(address="x", local_name="JBD-SP04S")
    )
    assert not BleMatcher(local_name_prefix="JBD-").matches(Advertisement(address="x"))
    maker = BleMatcher(manufacturer_id=0x0B65, manufacturer_data_prefix=b"\x01")
    assert maker.matches(Advertisement(address="x", manufacturer_data={0x0B65: b"\x01\x02"}))
    assert not maker.matches(Advertisement(address="x", manufacturer_data={0x0B65: b"\x02"}))
    assert not maker.matches(Advertisement(address="x", manufacturer_data={1: b"\x01"}))


def test_matcher_declarations_are_checked() -> None:
    assert to_matchers([{"local_name": "X"}]) == (BleMatcher(local_name="X"),)
    for bad in ({}, {"colour": "red"}, {"oui": "A4C138"}, {"service_uuid": "nope"}, 42):
        with pytest.raises(ValueError):
            to_matchers([bad])  # type: ignore[list-item]


def _registries_with_declared_matchers() -> Registries:
    regs = Registries()
    regs.drivers.add(
        DriverSpec(
            name="fake",
            variants=(
                VariantSpec(
                    name="serial",
                    transports=("stream",),
                    capabilities=frozenset(),
                    session=object(),
                ),
                VariantSpec(
                    name="ble",
                    transports=("stream",),
                    capabilities=frozenset(),
                    session="fake_ble_driver:Session",  # never imported by a scan
                    ble_matchers=({"local_name_prefix": "FAKE-"},),
                ),
            ),
        )
    )
    return regs


def test_variant_matchers_are_checked_at_declaration() -> None:
    with pytest.raises(ValueError, match="bad BLE matcher"):
        VariantSpec(
            name="ble",
            transports=("stream",),
            capabilities=frozenset(),
            session=object(),
            ble_matchers=({"colour": "red"},),
        )


def test_every_installed_ble_family_is_claimable() -> None:
    from bmshost.plugins import load_plugins

    claims = {(c.driver, c.variant) for c in scan.driver_claims(load_plugins().registries)}
    assert {("jbd", "ble"), ("jk", "ble"), ("daly", "ble"), ("daly", "ble_a5"), ("seplos", "ble")} <= claims


def _args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    scan.configure(parser)
    return parser.parse_args(["ble", *[f"--{k}" for k, v in kw.items() if v is True]])


def test_scan_lists_claimed_devices(capsys: pytest.CaptureFixture[str]) -> None:
    async def fake_scanner(timeout: float, adapter: str) -> list[Advertisement]:
        return [
            Advertisement(address="11:22:33:44:55:66", local_name="FAKE-1", rssi=-70),
            Advertisement(address="AA:BB:CC:DD:EE:FF", local_name="Phone", rssi=-40),
        ]

    assert scan.run(_args(), fake_scanner, _registries_with_declared_matchers()) == 0
    out = capsys.readouterr().out
    assert "11:22:33:44:55:66" in out and "fake/ble" in out and "Phone" not in out
    assert (
        scan.run(_args(all=True, json=True), fake_scanner, _registries_with_declared_matchers()) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0].startswith('{"address": "AA:BB:CC:DD:EE:FF"')
        and '"drivers": ["fake/ble"]' in lines[1]
    )


def test_scan_without_bus_or_adapter_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    async def no_bus(timeout: float, adapter: str) -> list[Advertisement]:
        raise FileNotFoundError(2, "No such file or directory")

    assert scan.run(_args(), no_bus, Registries()) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no D-Bus system bus" in err and "Traceback" not in err


def test_scan_with_real_bleak_here_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    # This machine has no BlueZ (and maybe no system bus): the real scanner must fail in one line.
    args = _args()
    args.timeout = 0.05
    status = scan.run(args, None, Registries())
    captured = capsys.readouterr()
    if status == 0:
        pytest.skip("a Bluetooth stack is available here")
    assert status == 1 and captured.err.startswith("bmshost scan ble: scan failed: ")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (FileNotFoundError(2, "x"), "no D-Bus system bus"),
        (TimeoutError(), "no answer in time"),
        (PermissionError(13, "denied"), "permission denied"),
        (
            RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown"),
            "BlueZ (bluetoothd) is not running",
        ),
        (ValueError("strange"), "ValueError: strange"),
    ],
)
def test_error_explanations(exc: BaseException, text: str) -> None:
    assert text in explain(exc, "BLE X")


def test_plugins_register_transport_and_scan_command() -> None:
    regs = load_plugins().registries
    spec = regs.transports.for_scheme("ble")
    assert spec is not None and spec.kind == "stream"
    assert "scan" in regs.commands


def test_plugin_module_is_import_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bmshost_transport_ble.plugin, bmshost_transport_ble.commands;"
        "print('bleak' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scan_helper_runs_in_its_own_loop() -> None:
    # run() uses asyncio.run: it must work when no loop is running (the CLI's situation).
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
