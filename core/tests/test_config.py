"""Configuration: strict structuring, key paths in errors, binding against the plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmshost.config import bind_config, load_config_file, parse_config
from bmshost.errors import ConfigError
from bmshost.plugins import load_plugins


@pytest.fixture(scope="module")
def registries():  # type: ignore[no-untyped-def]
    return load_plugins().registries


def _problems(data: dict, registries=None) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        config = parse_config(data)
        if registries is not None:
            bind_config(config, registries)
    return info.value.problems


def test_defaults_and_a_good_file(tmp_path: Path, registries) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bmshost.toml"
    path.write_text(
        '[host]\npoll_interval = 2\n\n[[batteries]]\ndriver = "jbd"\nport = "/dev/ttyUSB0"\n'
        'name = "house"\n\n[sinks.console]\nrefresh = 0.5\n'
    )
    config = bind_config(load_config_file(path), registries)
    assert config.host.poll_interval == 2.0 and config.host.stale_after == 10.0
    assert config.batteries[0].url is not None and config.batteries[0].url.scheme == "serial"
    assert config.sinks["console"].refresh == 0.5


def test_unknown_keys_name_their_path() -> None:
    problems = _problems({"host": {"pol_interval": 1}, "extra": 1, "batteries": [{"driver": "jbd", "port": "/dev/x", "poll_interval": "fast"}]})
    assert "host.pol_interval: unknown key" in problems
    assert "extra: unknown key" in problems
    assert "batteries[0].poll_interval: expected a number, got 'fast'" in problems


def test_ranges_and_types() -> None:
    assert _problems({"host": {"poll_interval": -1}}) == ["host.poll_interval: must be > 0.0: -1.0"]
    assert _problems({"host": {"retries": 1.5}}) == ["host.retries: expected an integer, got 1.5"]
    assert _problems({"host": {"retries": True}}) == ["host.retries: expected an integer, got True"]
    (problem,) = _problems({"host": {"log_level": "loud"}})
    assert problem.startswith("host.log_level: must be debug, info")


def test_missing_required_keys() -> None:
    problems = _problems({"batteries": [{"driver": "jbd"}]})
    assert problems == ["batteries[0].port: required key missing"]


def test_unknown_driver_lists_installed(registries) -> None:  # type: ignore[no-untyped-def]
    problems = _problems({"batteries": [{"driver": "jbdx", "port": "/dev/ttyUSB0"}]}, registries)
    assert problems[0].startswith("batteries[0].driver: unknown driver 'jbdx' (installed: ")
    assert "jbd" in problems[0]


def test_bind_checks_variant_scheme_extras_and_sections(registries) -> None:  # type: ignore[no-untyped-def]
    problems = _problems(
        {
            "batteries": [
                {"driver": "jbd", "port": "/dev/ttyUSB0", "variant": "nope"},
                {"driver": "jbd", "port": "warp://x"},
                {"driver": "jbd", "port": "/dev/ttyUSB1", "colour": "red"},
            ],
            "sinks": {"nosuch": {}},
            "control": {"nosuch": {}},
        },
        registries,
    )
    text = "\n".join(problems)
    assert "batteries[0].variant: driver 'jbd' has no variant 'nope'" in text
    assert "batteries[1].port: no transport for 'warp' links" in text
    assert "batteries[2].colour: unknown key" in text
    assert "sinks.nosuch: unknown sink" in text
    assert "control.nosuch: unknown control section" in text


def test_same_port_and_address_twice_is_an_error(registries) -> None:  # type: ignore[no-untyped-def]
    battery = {"driver": "jbd", "port": "/dev/ttyUSB0"}
    problems = _problems({"batteries": [battery, dict(battery)]}, registries)
    assert any("same port and address as batteries[0]" in p for p in problems)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[host\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(bad)


def test_port_urls() -> None:
    from bmshost.url import parse_link_url

    url = parse_link_url("serial:///dev/ttyUSB0?baud=9600&parity=E")
    assert (url.scheme, url.target, url.params) == ("serial", "/dev/ttyUSB0", {"baud": "9600", "parity": "E"})
    assert parse_link_url("tcp://10.0.0.5:8899").target == "10.0.0.5:8899"
    assert parse_link_url("sim:jbd?cells=8").int_param("cells", 16) == 8
    with pytest.raises(ConfigError):
        parse_link_url("")
    with pytest.raises(ConfigError):
        parse_link_url("ttyUSB0")
    with pytest.raises(ConfigError, match="not an integer"):
        parse_link_url("sim:jbd?cells=x").int_param("cells", 1)
