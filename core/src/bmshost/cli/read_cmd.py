"""``bmshost read``: connect once, print one sample (table or JSON)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from bmshost.cli.common import prepare_dict
from bmshost.driver import SessionContext
from bmshost.errors import BmshostError, ConfigError, FrameError, LinkError
from bmshost.lazy import resolve
from bmshost.link import CaptureRecorder
from bmshost.model import Sample


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver", required=True, help="BMS family, e.g. jbd")
    parser.add_argument("--port", required=True, help="device path or URL (serial://, tcp://, ble://, can://, sim:)")
    parser.add_argument("--variant", help="variant of the family (default: the family's first)")
    parser.add_argument("--address", type=lambda s: int(s, 0), help="bus address (daisy chains)")
    parser.add_argument("--json", action="store_true", help="print the sample as JSON")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request (default 2)")
    parser.add_argument("--capture", metavar="FILE", help="record the exchanges to FILE")


def run(args: argparse.Namespace) -> int:
    battery: dict[str, object] = {"driver": args.driver, "port": args.port}
    if args.variant:
        battery["variant"] = args.variant
    if args.address is not None:
        battery["address"] = args.address
    config, plugins = prepare_dict({"batteries": [battery]})
    try:
        sample = asyncio.run(_read_once(config, plugins, args))
    except BmshostError as exc:
        if isinstance(exc, ConfigError):
            raise
        print(f"bmshost read: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(sample.to_json_dict()))
    else:
        print(format_table(sample))
    return 0


async def _read_once(config: object, plugins: object, args: argparse.Namespace) -> Sample:
    from bmshost.host import Host

    host = Host(config, plugins, capture=args.capture)  # type: ignore[arg-type]
    bc = host.config.batteries[0]
    driver = host.registries.drivers.get(bc.driver)
    assert driver is not None and bc.url is not None
    variant = driver.variant(bc.variant)
    link = host.make_link(0, bc.url, variant.link_params)
    recorder = link.recorder
    await link.open()
    try:
        session = resolve(variant.session)(
            SessionContext(link=link, variant=variant, options=bc.options, address=bc.address,
                           timeout=args.timeout, retries=2)
        )
        sample = await session.connect()  # static information and one full read
        try:
            sample = sample.merge(await session.read_slow())
        except (LinkError, FrameError) as exc:  # counters are a bonus; the read itself worked
            logging.getLogger("bmshost.cli").info("slow-set read failed: %s", exc)
        await session.close()
    finally:
        await link.close()
        if args.capture and isinstance(recorder, CaptureRecorder):
            from bmshost.capture import write_capture

            write_capture(args.capture, driver.name, variant.name, link, recorder)
    result: Sample = sample.fill_derived()
    return result


def format_table(sample: Sample) -> str:
    rows = []
    for key, value in sample.to_json_dict().items():
        if key == "cell_voltages":
            value = " ".join(f"{v:.3f}" for v in value)
        elif key == "cell_balancing":
            value = " ".join("B" if b else "." for b in value)
        elif key == "alarms":
            active = {k: v for k, v in value.items() if v}
            value = ", ".join(f"{k}={v}" for k, v in active.items()) or "none"
        rows.append((key, str(value)))
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
