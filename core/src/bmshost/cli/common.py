"""Helpers shared by the sub-commands: loading a configuration with only the plugins it needs."""

from __future__ import annotations

import logging
from typing import Any

from bmshost.config import Config, bind_config, load_config_file, parse_config
from bmshost.plugins import PluginManager, load_plugins

log = logging.getLogger("bmshost.cli")


def prepare(config: Config) -> tuple[Config, PluginManager]:
    """Load the plugins ``config`` uses (and only those), then validate against them."""
    plugins = load_plugins(
        config.selection(),
        allow=config.plugins.enable,
        block=config.plugins.disable,
    )
    for status in plugins.errors:
        log.warning("plugin %s (%s) is disabled: %s", status.name, status.distribution, status.error)
    return bind_config(config, plugins.registries), plugins


def prepare_file(path: str) -> tuple[Config, PluginManager]:
    return prepare(load_config_file(path))


def prepare_dict(data: dict[str, Any], source: str = "<command line>") -> tuple[Config, PluginManager]:
    return prepare(parse_config(data, source))


DEMO_CONFIG: dict[str, Any] = {
    "host": {"poll_interval": 1.0},
    # speed=30: the simulated pack lives 30 s per real second, so the demo visibly charges.
    "batteries": [{"driver": "jbd", "port": "sim:jbd?cells=16&capacity=100&current=40&speed=30", "name": "demo"}],
    "sinks": {"console": {}},
}
