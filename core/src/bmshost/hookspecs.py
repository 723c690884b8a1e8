"""The whole plugin contract of bmshost. Every hook a plugin may implement is declared here.

A plugin is a module (named by an entry point of group ``bmshost``) holding functions decorated
with ``bmshost.hookimpl`` whose names are the hooks below. Built-in plugins use the same hooks.

Registration hooks receive a registry and call ``registry.add(spec)``; a duplicate name is refused
with an error naming both plugins, and the offending plugin is disabled. Lifecycle hooks let a
plugin take part in start-up and shut-down. See ``docs/plugins.md`` for a complete example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from bmshost.registry import (
        CommandRegistry,
        DriverRegistry,
        SinkRegistry,
        StageRegistry,
        TransportRegistry,
    )

PROJECT = "bmshost"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bmshost_register_drivers(registry: DriverRegistry) -> None:
    """Register BMS drivers (families) with ``registry.add(DriverSpec(...))``.

    Called once, when the plugin manager loads the plugin. A ``DriverSpec`` names the family (the
    ``driver =`` value), its variants (each with the link kinds it runs on, its capabilities, its
    session factory, optional simulator, decoder and probes) and the options class for the
    family's own keys in a ``[[batteries]]`` table. Use lazy ``"module:attr"`` references for the
    session, simulator and decoder so that listing plugins imports nothing heavy.
    """


@hookspec
def bmshost_register_transports(registry: TransportRegistry) -> None:
    """Register link kinds with ``registry.add(TransportSpec(...))``.

    A transport serves one or more URL schemes (``serial``, ``tcp``, ``ble``, ``can``, ...). Its
    factory is called as ``factory(url: LinkUrl, params: Mapping[str, Any])`` where ``params`` are
    the driver variant's link defaults (e.g. ``{"baud": 9600}``) that URL parameters override, and
    returns an unopened ``StreamLink`` or ``CanLink``.
    """


@hookspec
def bmshost_register_stages(registry: StageRegistry) -> None:
    """Register control stages with ``registry.add(StageSpec(...))``.

    A stage has a name, an order (lower runs first), an options class (its ``[control.<section>]``
    table), a factory ``factory(StageContext) -> Stage`` and a predicate
    ``predicate(capabilities, options) -> (included, reason)`` that the core consults per battery.
    """


@hookspec
def bmshost_register_sinks(registry: SinkRegistry) -> None:
    """Register output sinks with ``registry.add(SinkSpec(...))``.

    A sink runs when the configuration has a ``[sinks.<name>]`` section; its factory is called as
    ``factory(SinkContext) -> Sink`` with the validated options.
    """


@hookspec
def bmshost_register_commands(registry: CommandRegistry) -> None:
    """Register ``bmshost <name>`` sub-commands with ``registry.add(CommandSpec(...))``.

    ``configure(parser)`` adds the command's arguments to an ``argparse`` parser; ``run(args)``
    performs it and returns the exit status. Used for commands that belong to one plugin, such
    as ``bmshost venus install``. Plugin commands are looked up only when the first word on the
    command line is not a built-in command.
    """


@hookspec
def bmshost_startup(host: Any) -> None:
    """Called once after every battery and sink is set up, before the first poll.

    ``host`` is the running ``bmshost.host.Host``. Use it for work that needs the whole picture
    (e.g. a plugin that adds a status endpoint). Exceptions are logged; the host carries on.
    """


@hookspec
def bmshost_shutdown(host: Any) -> None:
    """Called once when the host stops (SIGINT/SIGTERM or end of a run), after the last poll and
    before sinks stop. Exceptions are logged; shutdown carries on."""
