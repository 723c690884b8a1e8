"""``bmshost run``: the host."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bmshost.cli.common import DEMO_CONFIG, prepare_dict, prepare_file
from bmshost.host import Host


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", help="configuration file (bmshost.toml)")
    parser.add_argument("--demo", action="store_true", help="run against the built-in simulated JBD pack")
    parser.add_argument("--json", action="store_true", help="console sink prints one JSON object per sample")
    parser.add_argument("--explain", action="store_true", help="print each battery's control stages and exit")
    parser.add_argument("--capture", metavar="FILE", help="record every exchange of the link(s) to FILE")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")


def run(args: argparse.Namespace) -> int:
    if args.demo == bool(args.config):
        print("bmshost run: give either -c FILE or --demo", file=sys.stderr)
        return 2
    config, plugins = prepare_dict(dict(DEMO_CONFIG)) if args.demo else prepare_file(args.config)
    if args.json and "console" not in config.sinks:
        # --json asks for JSON lines on standard output: make sure the console sink runs.
        from bmshost.sinks.console import ConsoleOptions

        config.sinks["console"] = ConsoleOptions()
    _apply_log_levels(config.host.log_level, config.host.log_levels, args.log_level)
    host = Host(config, plugins, json_mode=args.json, capture=args.capture)
    if args.explain:
        print(host.explain())
        return 0
    host.build()
    asyncio.run(host.run(duration=args.duration))
    return 0


def _apply_log_levels(level: str, per_logger: dict[str, str], cli_level: str) -> None:
    if cli_level == "warning":  # the command line did not ask for a level: the file decides
        logging.getLogger().setLevel(getattr(logging, level.upper()))
    for name, lvl in per_logger.items():
        logging.getLogger(name).setLevel(getattr(logging, lvl.upper(), logging.INFO))
