"""``bmshost config check FILE`` and ``bmshost config import-ini config.ini [-o FILE]``."""

from __future__ import annotations

import argparse

from bmshost.cli.common import prepare_file


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a configuration file against the installed plugins")
    check.add_argument("file")
    imp = sub.add_parser("import-ini", help="convert a dbus-serialbattery config.ini to TOML")
    imp.add_argument("file")
    imp.add_argument("-o", "--output", help="write the TOML here instead of standard output")


def run(args: argparse.Namespace) -> int:
    if args.config_command == "check":
        config, _ = prepare_file(args.file)
        sinks = ", ".join(config.sinks) or "none"
        print(f"{args.file}: OK ({len(config.batteries)} batteries; sinks: {sinks})")
        return 0
    from bmshost.import_ini import import_ini_main

    argv = [args.file] + (["-o", args.output] if args.output else [])
    return import_ini_main(argv)


__all__ = ["configure", "run"]
