"""``bmshost simulate DRIVER``: serve a simulated BMS on a pseudo-terminal or a TCP port.

With ``--pty`` the first line of standard output is the device path to point a driver at; the
simulator then serves until SIGINT/SIGTERM. SIGUSR1 toggles silence (the BMS stops answering
and resumes), which is how tests and users try out staleness and reconnection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import tty

from bmshost.driver import Simulator
from bmshost.errors import LinkError
from bmshost.plugins import Selection, load_plugins
from bmshost.transports.sim import build_simulator


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("driver", help="BMS family, e.g. jbd")
    parser.add_argument("--variant", help="variant to simulate (default: the family's first)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal (default)")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    parser.add_argument("--bind", default="127.0.0.1", help="address for --tcp (default 127.0.0.1)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="simulator parameter, e.g. --set cells=16 --set soc=50 (repeatable)",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")


def run(args: argparse.Namespace) -> int:
    params: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"bmshost simulate: --set {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        params[key] = value
    if args.variant:
        params["variant"] = args.variant
    registries = load_plugins(Selection(drivers=frozenset({args.driver}), schemes=frozenset(), sinks=frozenset())).registries
    try:
        sim = build_simulator(args.driver, params, registries)
    except LinkError as exc:
        print(f"bmshost simulate: {exc}", file=sys.stderr)
        return 2
    if sim.kind != "stream":
        print("bmshost simulate: this variant is a CAN simulator; use it in-process (port = \"sim:...\")", file=sys.stderr)
        return 2
    server = SimulatorServer(sim, args.speed)
    try:
        if args.tcp is not None:
            asyncio.run(server.serve_tcp(args.bind, args.tcp))
        else:
            asyncio.run(server.serve_pty())
    except KeyboardInterrupt:
        pass
    return 0


class SimulatorServer:
    def __init__(self, sim: Simulator, speed: float = 1.0) -> None:
        self.sim = sim
        self.speed = speed
        self._last = time.monotonic()
        self._stop = asyncio.Event()

    def _advance(self) -> None:
        now = time.monotonic()
        self.sim.tick((now - self._last) * self.speed)
        self._last = now

    def _answer(self, data: bytes) -> bytes:
        self._advance()
        reply = self.sim.feed(data)
        return b"" if self.sim.silent else reply

    def _signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self._toggle_silence)

    def _toggle_silence(self) -> None:
        self.sim.silent = not self.sim.silent
        print("simulator " + ("silent" if self.sim.silent else "answering"), file=sys.stderr, flush=True)

    async def serve_pty(self) -> None:
        master, slave = os.openpty()
        os.set_blocking(master, False)
        tty.setraw(slave)  # no echo, no line discipline: a pty must behave like a UART
        path = os.ttyname(slave)
        print(path, flush=True)
        self._signals()
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(master, readable.set)
        try:
            while not self._stop.is_set():
                waiter = asyncio.create_task(readable.wait())
                stopper = asyncio.create_task(self._stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if self._stop.is_set():
                    break
                readable.clear()
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    continue
                except OSError:  # the slave side was closed and reopened; keep serving
                    await asyncio.sleep(0.05)
                    continue
                reply = self._answer(data)
                if reply:
                    os.write(master, reply)
        finally:
            loop.remove_reader(master)
            os.close(master)
            os.close(slave)

    async def serve_tcp(self, host: str, port: int) -> None:
        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(4096):
                    reply = self._answer(data)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(client, host, port)
        bound = server.sockets[0].getsockname()
        print(f"tcp://{bound[0]}:{bound[1]}", flush=True)
        self._signals()
        async with server:
            await self._stop.wait()
