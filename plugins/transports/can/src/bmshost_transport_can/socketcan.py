"""Setting a SocketCAN interface's bitrate (python-can cannot: the kernel owns it).

Used only when a URL asks for a bitrate (or ``auto``) on SocketCAN and the interface runs at a
different one. Needs ``ip`` from iproute2 and root (on Venus OS the driver runs as root). Without
them the error says what to run by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from bmshost.errors import LinkError

Runner = Callable[[list[str]], Awaitable[tuple[int, str, str]]]


async def run_command(argv: list[str]) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        return 127, "", str(exc)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def current_bitrate(ip_json: str) -> int | None:
    """The bitrate in ``ip -details -json link show`` output, or None (interface down/unknown)."""
    try:
        data = json.loads(ip_json)
        info = data[0]["linkinfo"]["info_data"]
        return int(info["bittiming"]["bitrate"])
    except (ValueError, LookupError, TypeError):
        return None


async def ensure_bitrate(channel: str, bitrate: int, run: Runner = run_command) -> None:
    """Make ``channel`` run at ``bitrate``; a no-op when it already does."""
    code, out, _ = await run(["ip", "-details", "-json", "link", "show", "dev", channel])
    if code == 0 and current_bitrate(out) == bitrate:
        return
    for argv in (
        ["ip", "link", "set", "dev", channel, "down"],
        ["ip", "link", "set", "dev", channel, "type", "can", "bitrate", str(bitrate)],
        ["ip", "link", "set", "dev", channel, "up"],
    ):
        code, _, err = await run(argv)
        if code != 0:
            raise LinkError(
                f"CAN {channel}: cannot set bitrate {bitrate} ({err.strip() or 'ip failed'}); "
                f"run as root or set it yourself: ip link set {channel} type can bitrate {bitrate}"
            )
