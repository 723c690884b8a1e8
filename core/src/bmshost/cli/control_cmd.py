"""``bmshost control replay TRACE.jsonl [-c FILE]``: feed a recorded trace through a pipeline."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="control_command", metavar="ACTION", required=True)
    replay = sub.add_parser("replay", help="replay a JSON-lines trace through the control pipeline")
    replay.add_argument("trace", help="trace file, one JSON object per line")
    replay.add_argument("-c", "--config", help="take the [control.*] options from this TOML file")


def run(args: argparse.Namespace) -> int:
    from bmshost.control_replay import replay_main

    argv = [args.trace] + (["-c", args.config] if args.config else [])
    return replay_main(argv)
