"""``bmshost decode``: turn response frames from a log into the JSON sample of brief §6."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from bmshost.driver import VariantSpec
from bmshost.errors import FrameError
from bmshost.lazy import resolve
from bmshost.link import CanFrame
from bmshost.plugins import Selection, load_plugins


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver", required=True, help="BMS family, e.g. jbd")
    parser.add_argument("--variant", help="variant (recognised from the frame when not given)")
    parser.add_argument("frames", nargs="+", metavar="FRAME", help="hex string, or ID#DATA for CAN")


def _parse_frames(texts: list[str]) -> tuple[list[Any], bool]:
    is_can = any("#" in t for t in texts)
    frames: list[Any] = []
    for text in texts:
        if is_can:
            frames.append(CanFrame.from_candump(text))
        else:
            clean = "".join(text.split()).replace(":", "")
            if clean.lower().startswith("0x"):
                clean = clean[2:]
            frames.append(bytes.fromhex(clean))
    return frames, is_can


def _pick_variant(variants: tuple[VariantSpec, ...], frames: list[Any], is_can: bool) -> VariantSpec | None:
    candidates = [v for v in variants if v.decoder is not None and (("can" in v.transports) == is_can)]
    if is_can:
        return candidates[0] if len(candidates) == 1 else _first_decoding(candidates, frames)
    for v in candidates:
        if v.recognise is not None and v.recognise(frames[0]):
            return v
    return _first_decoding(candidates, frames)


def _first_decoding(candidates: list[VariantSpec], frames: list[Any]) -> VariantSpec | None:
    for v in candidates:
        try:
            resolve(v.decoder)(frames)
            return v
        except FrameError:
            continue
    return None


def run(args: argparse.Namespace) -> int:
    registries = load_plugins(Selection(drivers=frozenset({args.driver}), schemes=frozenset(), sinks=frozenset())).registries
    spec = registries.drivers.get(args.driver)
    if spec is None:
        print(f"bmshost decode: unknown driver {args.driver!r} (installed: {', '.join(registries.drivers.names()) or 'none'})", file=sys.stderr)
        return 2
    try:
        frames, is_can = _parse_frames(args.frames)
    except ValueError as exc:
        print(f"bmshost decode: not a frame: {exc}", file=sys.stderr)
        return 1
    if args.variant:
        try:
            variant: VariantSpec | None = spec.variant(args.variant)
        except KeyError as exc:
            print(f"bmshost decode: {exc.args[0]}", file=sys.stderr)
            return 2
    else:
        variant = _pick_variant(spec.variants, frames, is_can)
        if variant is None:
            # Nothing recognised the frames: decode with the most likely variant so the user sees
            # the concrete reason (bad checksum, wrong length) rather than a shrug.
            kind = [v for v in spec.variants if v.decoder is not None and (("can" in v.transports) == is_can)]
            if not kind:
                print(f"bmshost decode: no {spec.name} variant decodes {'CAN' if is_can else 'byte'} frames", file=sys.stderr)
                return 1
            variant = kind[0]
    assert variant is not None
    if variant.decoder is None:
        print(f"bmshost decode: variant {variant.name!r} has no decoder", file=sys.stderr)
        return 2
    try:
        sample = resolve(variant.decoder)(frames)
    except FrameError as exc:
        print(f"bmshost decode: {exc}", file=sys.stderr)
        return 1
    # Standard output is exactly the sample (the JSON contract); the variant goes to the log.
    print(json.dumps(sample.to_json_dict()))
    logging.getLogger("bmshost.cli").info("decoded as %s/%s", spec.name, variant.name)
    return 0
