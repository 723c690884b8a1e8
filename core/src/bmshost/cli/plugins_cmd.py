"""``bmshost plugins``: what is installed, what each plugin registers, the capability matrix."""

from __future__ import annotations

import argparse
import json

from bmshost.capabilities import Capability
from bmshost.plugins import PluginManager, load_plugins


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--matrix", action="store_true", help="capability table (Yes/No per driver variant)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    manager = load_plugins()
    if args.matrix:
        print(json.dumps(matrix_data(manager), indent=1) if args.json else format_matrix(manager))
        return 0
    if args.json:
        print(json.dumps(listing_data(manager), indent=1))
        return 0
    print(format_listing(manager))
    return 1 if manager.errors else 0


def listing_data(manager: PluginManager) -> list[dict[str, object]]:
    regs = manager.registries
    out: list[dict[str, object]] = []
    for status in manager.status.values():
        entry: dict[str, object] = {
            "name": status.name,
            "module": status.module,
            "distribution": status.distribution,
            "version": status.version,
            "loaded": status.loaded,
            "registered": status.registered,
        }
        if status.error:
            entry["error"] = status.error
        drivers = []
        for name in status.registered.get("drivers", []):
            spec = regs.drivers.get(name)
            if spec is not None:
                drivers.append({
                    "name": name,
                    "variants": {
                        v.name: sorted(c.name.lower() for c in v.capabilities) for v in spec.variants
                    },
                })
        if drivers:
            entry["drivers"] = drivers
        out.append(entry)
    return out


def format_listing(manager: PluginManager) -> str:
    lines = []
    for status in manager.status.values():
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in status.registered.items()) or "nothing"
        version = f" {status.version}" if status.version else ""
        state = f"ERROR: {status.error}" if status.error else what
        lines.append(f"{status.name:<24} {status.distribution}{version:<10}  {state}")
    regs = manager.registries
    for spec in regs.drivers:
        for v in spec.variants:
            caps = ", ".join(sorted(c.name.lower() for c in v.capabilities))
            lines.append(f"  driver {spec.name}/{v.name}: {caps}")
    return "\n".join(lines)


def _columns(manager: PluginManager) -> list[tuple[str, frozenset[Capability]]]:
    cols = []
    for spec in sorted(manager.registries.drivers, key=lambda s: s.name):
        for v in spec.variants:
            cols.append((f"{spec.name} {v.name}", v.capabilities))
    return cols


def matrix_data(manager: PluginManager) -> dict[str, dict[str, bool]]:
    cols = _columns(manager)
    return {cap.value: {name: cap in caps for name, caps in cols} for cap in Capability}


def format_matrix(manager: PluginManager) -> str:
    """The shape of the reference's "BMS feature comparison": features down, drivers across."""
    cols = _columns(manager)
    if not cols:
        return "no BMS drivers installed"
    width = max(len(c.value) for c in Capability)
    header = "Feature".ljust(width) + " | " + " | ".join(name for name, _ in cols)
    lines = [header, "-" * len(header)]
    for cap in Capability:
        cells = " | ".join(("Yes" if cap in caps else "No").ljust(len(name)) for name, caps in cols)
        lines.append(cap.value.ljust(width) + " | " + cells)
    return "\n".join(lines)
