"""The ``bmshost`` command: dispatch to sub-commands, logging set-up, exit statuses.

Exit statuses: 0 success, 1 a run-time failure (BMS not answering, bad frame), 2 a usage or
configuration error (nothing was started).
"""

from __future__ import annotations

import os
import sys


def _asyncio_without_tls() -> None:
    """Import asyncio without its optional ``ssl`` import (about 6 MB resident on a GX device).

    bmshost never uses asyncio's own TLS (MQTT TLS is paho's, which imports ``ssl`` itself when
    a TLS sink is configured). ``BMSHOST_ASYNCIO_TLS=1`` keeps the normal behaviour for a plugin
    that needs asyncio TLS.
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules or os.environ.get("BMSHOST_ASYNCIO_TLS"):
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # "not importable": asyncio falls back
    try:
        import asyncio  # noqa: F401
    finally:
        if sys.modules.get("ssl") is None:
            del sys.modules["ssl"]


_asyncio_without_tls()

import argparse  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

from bmshost import __version__  # noqa: E402
from bmshost.errors import ConfigError  # noqa: E402

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# name -> (help, module with `configure(parser)` and `run(args) -> int`)
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run the host (all configured batteries and sinks)", "bmshost.cli.run_cmd"),
    "read": ("connect once and print one sample", "bmshost.cli.read_cmd"),
    "detect": ("probe a serial/RS485/TCP port for the BMS family that answers", "bmshost.cli.detect_cmd"),
    "decode": ("decode response frames from a log into a JSON sample", "bmshost.cli.decode_cmd"),
    "simulate": ("serve a simulated BMS on a pseudo-terminal or TCP port", "bmshost.cli.simulate_cmd"),
    "plugins": ("list installed plugins, or the capability matrix", "bmshost.cli.plugins_cmd"),
    "config": ("check a configuration, or import a dbus-serialbattery config.ini", "bmshost.cli.config_cmd"),
    "control": ("control tools: replay a recorded trace through the pipeline", "bmshost.cli.control_cmd"),
}


def setup_logging(level: str, per_logger: Sequence[str] = ()) -> None:
    """``level`` for everything; ``per_logger`` items are ``name=level`` (e.g. ``bmshost.driver=debug``)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for item in per_logger:
        name, sep, lvl = item.partition("=")
        if not sep or not hasattr(logging, lvl.upper()):
            raise ConfigError(f"--log {item!r}: expected LOGGER=LEVEL, e.g. bmshost.driver=debug")
        logging.getLogger(name).setLevel(getattr(logging, lvl.upper()))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="warning", help="debug, info, warning (default), error")
    parser.add_argument(
        "--log", action="append", default=[], metavar="LOGGER=LEVEL",
        help="per-plugin log level, e.g. --log bmshost.battery=debug (repeatable)",
    )


def _load(module_name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    import importlib

    module = importlib.import_module(module_name)
    return module.configure, module.run


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog="bmshost",
        description="Battery-management-system host: reads BMS packs, computes safe charge limits, "
        "publishes to Venus OS, MQTT and the terminal.",
    )
    top.add_argument("--version", action="version", version=f"bmshost {__version__}")
    subs = top.add_subparsers(dest="command", metavar="COMMAND")
    command = next((a for a in args_list if not a.startswith("-")), None)
    runner: Callable[[argparse.Namespace], int] | None = None
    for name, (help_text, module_name) in BUILTIN_COMMANDS.items():
        parser = subs.add_parser(name, help=help_text, description=help_text)
        _common(parser)
        if name == command:
            configure, runner = _load(module_name)
            configure(parser)
    if command is not None and command not in BUILTIN_COMMANDS:
        runner = _plugin_command(subs, command)
    elif command is None or "-h" in args_list or "--help" in args_list:
        _list_plugin_commands(subs)
    try:
        args = top.parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is None or runner is None:
        top.print_help()
        return EXIT_USAGE
    try:
        setup_logging(args.log_level, args.log)
        return runner(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"bmshost: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK




def _plugin_command(subs: argparse._SubParsersAction, name: str) -> Callable[[argparse.Namespace], int] | None:  # type: ignore[type-arg]
    from bmshost.lazy import resolve
    from bmshost.plugins import load_plugins

    spec = load_plugins().registries.commands.get(name)
    if spec is None:
        return None
    parser = subs.add_parser(name, help=spec.help, description=spec.help)
    _common(parser)
    resolve(spec.configure)(parser)
    run: Callable[[argparse.Namespace], int] = resolve(spec.run)
    return run


def _list_plugin_commands(subs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    try:
        from bmshost.plugins import load_plugins

        for spec in load_plugins().registries.commands:
            subs.add_parser(spec.name, help=f"{spec.help} (plugin)")
    except Exception:  # help must work even when a plugin is broken
        pass


if __name__ == "__main__":
    raise SystemExit(main())
