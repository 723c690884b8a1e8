"""``bmshost venus ...``: install, uninstall, status, and the serial-starter port helper."""

from __future__ import annotations

import argparse
import signal
import sys
import tomllib
from pathlib import Path

from .install import InstallOptions, Layout, install, status, uninstall


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="venus_command", required=True)
    for name, text in (
        ("install", "lay out bmshost under /data as a daemontools service that survives updates"),
        ("uninstall", "remove exactly what install created, and its boot-hook line"),
        ("status", "show which parts of the installation are present"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--root", type=Path, default=Path("/"), help="file-system root (tests)")
        if name == "install":
            p.add_argument("--config", type=Path, help="bmshost.toml to install")
            p.add_argument("--no-venv", action="store_true", help="do not create the venv")
            p.add_argument(
                "--package",
                action="append",
                default=[],
                metavar="REQ",
                help="pip requirement for the venv (repeatable), e.g. bmshost-sink-venus",
            )
            p.add_argument("--python", default=sys.executable, help="Python for the venv")
        if name == "uninstall":
            p.add_argument("--keep-config", action="store_true", help="keep bmshost.toml")
    p = sub.add_parser(
        "port",
        help="serial-starter helper: hold TTY while a configured battery uses it, else exit",
    )
    p.add_argument("tty", help="tty name as serial-starter passes it (ttyUSB0)")
    p.add_argument("--config", type=Path, required=True)


def configured_ports(config: Path) -> set[str]:
    """The serial ports of the ``[[batteries]]`` tables (device paths and bare tty names)."""
    data = tomllib.loads(config.read_text())
    ports: set[str] = set()
    for table in data.get("batteries", []):
        port = table.get("port") if isinstance(table, dict) else None
        if isinstance(port, str):
            ports.add(port)
            ports.add(port.removeprefix("serial:").removeprefix("/dev/"))
    return ports


def run(args: argparse.Namespace) -> int:
    command = args.venus_command
    if command == "install":
        opts = InstallOptions(
            root=args.root,
            config=args.config,
            venv=not args.no_venv,
            packages=list(args.package),
            python=args.python,
        )
        created = install(opts)
        for path in created:
            print(f"created {path}")
        if not created:
            print("already installed; nothing to do")
        if args.root == Path("/"):
            print("start: svc -u /service/bmshost (svscan picks it up within 5 s)")
        return 0
    if command == "uninstall":
        if args.root == Path("/"):
            _svc_down(Layout(args.root))
        for path in uninstall(args.root, keep_config=args.keep_config):
            print(f"removed {path}")
        return 0
    if command == "status":
        parts = status(args.root)
        width = max(len(k) for k in parts)
        for key, present in parts.items():
            print(f"{key:<{width}}  {'yes' if present else 'no'}")
        return 0 if all(parts.values()) else 1
    if command == "port":
        try:
            mine = args.tty in configured_ports(args.config)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            print(f"cannot read {args.config}: {exc}", file=sys.stderr)
            return 1
        if not mine:
            print(f"{args.tty} is not a bmshost battery port; leaving it to the next program")
            return 0
        stop = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # sigwait needs them blocked
        print(f"{args.tty} belongs to bmshost; holding it for serial-starter", flush=True)
        signal.sigwait(stop)
        return 0
    return 2


def _svc_down(layout: Layout) -> None:
    import subprocess

    for service in (layout.live_service, layout.live_service / "log"):
        if service.exists():
            subprocess.run(["svc", "-d", str(service)], check=False)
