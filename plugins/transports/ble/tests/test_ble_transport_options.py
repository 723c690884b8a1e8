"""``[transports.ble]``: adapter settings from the configuration file, strictly checked, reaching
the connection manager that the host's links use."""

from __future__ import annotations

from typing import Any

import pytest

from bmshost.cli.common import prepare_dict
from bmshost.errors import ConfigError
from bmshost.host import Host
from bmshost_transport_ble.link import BleStreamLink
from bmshost_transport_ble.options import BleTransportOptions


def config(transports: dict[str, Any], adapter: str) -> dict[str, Any]:
    return {
        "transports": transports,
        "batteries": [
            {"driver": "jbd", "variant": "ble", "port": f"ble://A4:C1:38:00:00:01?adapter={adapter}"}
        ],
    }


def test_the_table_reaches_the_adapter_manager(tmp_path: Any) -> None:
    raw = config(
        {"ble": {"slots": 7, "reconnect_initial": 1.0, "reconnect_max": 30.0,
                 "adapter_reset_after": 0}},
        adapter="hci5",  # an adapter no other test uses: managers are per process and adapter
    )
    raw["host"] = {"state_dir": str(tmp_path)}
    cfg, plugins = prepare_dict(raw)
    host = Host(cfg, plugins)
    host.build()
    link = host.batteries[0].shared.link
    assert isinstance(link, BleStreamLink)
    assert link.manager.slots == 7
    assert (link.manager.policy.initial, link.manager.policy.maximum) == (1.0, 30.0)
    assert link.manager.policy.reset_after > 10**6  # 0 = never reset the adapter


def test_defaults_without_a_table() -> None:
    cfg, _ = prepare_dict(config({}, adapter="hci6"))
    assert cfg.transports["ble"] == BleTransportOptions()
    assert BleTransportOptions().slots == 5


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"ble": {"slots": 0}}, "transports.ble"),
        ({"ble": {"slots": "5"}}, "transports.ble.slots"),
        ({"ble": {"slot": 5}}, "transports.ble"),
        ({"ble": {"reconnect_initial": 10.0, "reconnect_max": 5.0}}, "reconnect_max"),
        ({"bel": {"slots": 5}}, "transports.bel: unknown transport"),
        ({"serial": {"baud": 9600}}, "transports.serial: this transport takes no options"),
    ],
)
def test_mistakes_are_config_errors(table: dict[str, Any], message: str) -> None:
    raw = config(table, adapter="hci0")
    raw["batteries"].append({"driver": "jbd", "port": "/dev/ttyUSB0"})
    with pytest.raises(ConfigError, match=message):
        prepare_dict(raw)
