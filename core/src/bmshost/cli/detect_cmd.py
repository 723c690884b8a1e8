"""``bmshost detect``: which installed BMS family answers on a serial/RS485/TCP port."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from bmshost.detect import Found, candidates, detect
from bmshost.errors import BmshostError, ConfigError
from bmshost.lazy import resolve
from bmshost.plugins import Selection, load_plugins
from bmshost.url import LinkUrl, parse_link_url


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="device path or URL (serial://, tcp://, ...)")
    parser.add_argument("--driver", action="append", default=[], metavar="FAMILY",
                        help="probe only this family (repeatable; default: every installed one)")
    parser.add_argument("--all", action="store_true",
                        help="keep probing after the first answer (daisy chains, mixed buses)")
    parser.add_argument("--json", action="store_true", help="one JSON object per answer")


def run(args: argparse.Namespace) -> int:
    url = parse_link_url(args.port)
    manager = load_plugins(Selection(schemes=frozenset({url.scheme})))
    registries = manager.registries
    spec = registries.transports.for_scheme(url.scheme)
    if spec is None:
        raise ConfigError(f"--port: no installed transport serves {url.scheme}://")
    unknown = sorted(set(args.driver) - set(registries.drivers.names()))
    if unknown:
        known = ", ".join(registries.drivers.names())
        raise ConfigError(f"--driver: unknown family {', '.join(unknown)} (installed: {known})")
    if not candidates(registries.drivers, args.driver):
        print("bmshost detect: no installed family declares a probe for this kind of port",
              file=sys.stderr)
        return 1
    factory = resolve(spec.factory)

    def make_link(u: LinkUrl, params: Mapping[str, Any]) -> Any:
        return factory(u, params)

    try:
        found = asyncio.run(
            detect(url, make_link, registries.drivers, only=args.driver, find_all=args.all)
        )
    except BmshostError as exc:
        if isinstance(exc, ConfigError):
            raise
        print(f"bmshost detect: {exc}", file=sys.stderr)
        return 1
    if not found:
        print(f"bmshost detect: no installed BMS family answered on {args.port}", file=sys.stderr)
        return 1
    _print(found, args.port, args.json)
    return 0


def _print(found: list[Found], port: str, as_json: bool) -> None:
    for f in found:
        if as_json:
            print(json.dumps(f.to_json_dict()))
        else:
            print(f"# {f.driver}/{f.variant} answered ({_params(f.link_params)})")
            print(f.config_snippet(port))
            print()


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "default link settings"
