"""Host CPU per 16-cell JBD poll through the production serial transport: a real
pseudo-terminal (the path a USB-serial/RS485 adapter takes) and a raw-TCP RS485 gateway.

    uv run python tests/bench/bench_serial.py

Measured as in ``bench_ble_can.py`` (see its docstring): the far end's replies are computed
before the clock starts (``RecordedFarEnd``: the JBD simulator's answers to the driver's two
requests for 64 successive simulated seconds), and the host's CPU is ``time.thread_time()`` of
the event loop's thread over ``CYCLES`` reads (``session.read()``: two request/reply exchanges)
after ``WARMUP`` reads. Here the far end is its own process (no GIL shared with the host)
answering from that table over real I/O: the master side of a pty (the host opens the slave
through ``SerialLink``: pyserial's open, exclusive lock and termios settings, the link's
reads and writes), or the accepted end of a TCP connection on 127.0.0.1 (``TcpLink``).

The figure depends on where the scheduler puts the two processes (on the development VM a
host sharing its core with the far end pays for the context switches; on separate cores it
does not, but then an idle core's wake-up shows). Each figure is therefore taken ``REPEATS``
times, each with a fresh far-end process, and given as min / median / max; the pty is also
measured with both processes pinned to one core and to two different cores.

Keys
----
* ``jbd_serial_16s_pty_host_us{,_min,_max}``: median (min, max) over ``REPEATS`` runs, the
  scheduler free to place both processes.
* ``jbd_serial_16s_pty_same_core_host_us`` / ``…_split_cores_host_us``: medians with host and
  far end pinned to one core / to two cores (left out on a one-CPU machine).
* ``jbd_serial_16s_pty_chunked_host_us{,_min,_max}``: the far end sends each reply in 16-byte
  pieces 0.5 ms apart, so the host receives it in three or four reads, as from a USB adapter
  (they hand a 9600-baud reply over in pieces: a latency timer or a packet size); a third of
  ``CYCLES`` reads per run.
* ``jbd_serial_16s_pty_link_only_host_us{,_min,_max}``: the link alone: per "read", the two
  ``link.request`` calls of a JBD poll with JBD's framer, no session or codec.
* ``jbd_pty_two_exchanges_floor_host_us{,_min,_max}``: the I/O alone: the same two exchanges as
  a bare ``os.write`` and a future woken by a loop reader callback that counts the reply's
  bytes (no link, no framer): what any asyncio host pays for the kernel and the wake-ups.
* ``jbd_tcp_16s_host_us{,_min,_max}``: the same over ``TcpLink`` to a TCP far end.
* ``jbd_serial_16s_sim_link_host_us``: the same session over core's in-process
  ``SimStreamLink`` (no I/O at all), median: what the driver and codec cost without transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import tty
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from bench_ble_can import (
    CYCLES,
    RecordedFarEnd,
    _ctx,
    _jbd_requests,
    _jbd_variants,
    host_cpu,
)

REPEATS = 5
PIECE, PIECE_GAP = 16, 0.0005  # the chunked variant: 16-byte pieces, 0.5 ms apart

# The far end: its own process, answering from the recorded table on the descriptor it is
# given (a pty master or a connected socket); the round moves on after the poll's last request.
_FAR_END = """
import os, pickle, sys, time
requests, table = pickle.load(open(sys.argv[1], "rb"))
fd, piece, gap = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
buf, index = b"", 0
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    buf += data
    reply = table[index].get(buf)
    if reply is not None:
        if piece:
            for at in range(0, len(reply), piece):
                if at:
                    time.sleep(gap)
                os.write(fd, reply[at : at + piece])
        else:
            os.write(fd, reply)
        if buf == requests[-1]:
            index = (index + 1) % len(table)
        buf = b""
    elif not any(r.startswith(buf) for r in requests):
        buf = b""
"""


@contextlib.contextmanager
def far_end(fd: int, cpu: int | None, piece: int = 0, gap: float = 0.0) -> Iterator[None]:
    """Run the recorded JBD far end on ``fd`` in another process (pinned to ``cpu`` if given;
    replies sent whole, or in ``piece``-byte pieces ``gap`` seconds apart)."""
    from bmshost_jbd.simulator import JbdSimulator

    recorded = RecordedFarEnd(JbdSimulator(cells=16), _jbd_requests())
    with tempfile.TemporaryDirectory() as tmp:
        table = os.path.join(tmp, "table.pickle")
        with open(table, "wb") as out:
            pickle.dump((recorded.requests, recorded.table), out)
        args = [table, str(fd), str(piece), str(gap)]
        proc = subprocess.Popen([sys.executable, "-c", _FAR_END, *args], pass_fds=[fd])
        try:
            if cpu is not None:
                os.sched_setaffinity(proc.pid, {cpu})
            yield
        finally:
            proc.kill()
            proc.wait()


async def _session_cpu(link: Any, cycles: int = CYCLES) -> float:
    from bmshost_jbd.session import JbdSession

    try:
        await link.open()
        return await host_cpu(JbdSession(_ctx(link, _jbd_variants()["serial"])).read, cycles=cycles)
    finally:
        await link.close()


@contextlib.contextmanager
def _pty(far_cpu: int | None = None, piece: int = 0) -> Iterator[str]:
    """A raw pty with the far end on its master side; yields the slave's path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with far_end(master, far_cpu, piece, PIECE_GAP):
            yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def _serial_link(path: str) -> Any:
    from bmshost.url import parse_link_url
    from bmshost_transport_serial.links import SerialLink

    return SerialLink(parse_link_url(f"serial://{path}"), {})


async def pty_read(far_cpu: int | None = None, piece: int = 0) -> float:
    with _pty(far_cpu, piece) as path:
        return await _session_cpu(_serial_link(path), CYCLES // 3 if piece else CYCLES)


async def pty_link_only() -> float:
    """The link without the driver: the poll's two ``link.request`` calls, JBD's framer."""
    from bmshost_jbd import codec

    with _pty() as path:
        link = _serial_link(path)
        await link.open()
        requests = _jbd_requests()

        async def read() -> None:
            for request in requests:
                await link.request(request, codec.find_frame, 1.0)

        try:
            return await host_cpu(read)
        finally:
            await link.close()


async def pty_floor() -> float:
    """What the I/O costs with no link and no driver: per poll, two exchanges of a bare
    ``os.write`` and a future woken by the loop's reader callback once the reply's bytes are in
    (the port opened by pyserial as the link does)."""
    import serial

    from bmshost_jbd.simulator import JbdSimulator

    table = RecordedFarEnd(JbdSimulator(cells=16), _jbd_requests(), rounds=1).table[0]
    exchanges = [(request, len(reply)) for request, reply in table.items()]
    with _pty() as path:
        port = serial.Serial(path, timeout=0, exclusive=True)
        fd = port.fileno()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        missing = 0

        def readable() -> None:
            nonlocal missing
            missing -= len(os.read(fd, 4096))
            if missing <= 0 and not waiter.done():
                waiter.set_result(None)

        async def read() -> None:
            nonlocal waiter, missing
            for request, size in exchanges:
                missing, waiter = size, loop.create_future()
                os.write(fd, request)
                await waiter

        loop.add_reader(fd, readable)
        try:
            return await host_cpu(read)
        finally:
            loop.remove_reader(fd)
            port.close()


async def tcp_read() -> float:
    from bmshost.url import parse_link_url
    from bmshost_transport_serial.links import TcpLink

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        link = TcpLink(parse_link_url(f"tcp://127.0.0.1:{port}"), {})
        await link.open()  # the kernel completes the handshake against the listen backlog
        conn, _ = server.accept()
        with conn, far_end(conn.fileno(), None):
            return await _session_cpu(link)


async def sim_link_read() -> float:
    from bmshost.testing import make_sim_link
    from bmshost_jbd.session import JbdSession
    from bmshost_jbd.simulator import JbdSimulator

    far = RecordedFarEnd(JbdSimulator(cells=16), _jbd_requests())
    link = make_sim_link(far, url="sim:jbd")
    await link.open()
    return await host_cpu(JbdSession(_ctx(link, _jbd_variants()["serial"])).read, far.next_round)


async def _repeat(measure: Callable[[], Awaitable[float]]) -> list[float]:
    return [await measure() for _ in range(REPEATS)]


@contextlib.contextmanager
def _host_on(cpu: int | None) -> Iterator[None]:
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _spread(prefix: str, runs: list[float]) -> dict[str, float]:
    return {
        prefix: round(statistics.median(runs), 1),
        f"{prefix}_min": round(min(runs), 1),
        f"{prefix}_max": round(max(runs), 1),
    }


async def _main() -> dict[str, float]:
    out: dict[str, float] = {}
    out.update(_spread("jbd_serial_16s_pty_host_us", await _repeat(pty_read)))
    out.update(_spread("jbd_serial_16s_pty_link_only_host_us", await _repeat(pty_link_only)))
    out.update(_spread("jbd_pty_two_exchanges_floor_host_us", await _repeat(pty_floor)))
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        with _host_on(cpus[0]):
            same = await _repeat(lambda: pty_read(cpus[0]))
            split = await _repeat(lambda: pty_read(cpus[1]))
        out["jbd_serial_16s_pty_same_core_host_us"] = round(statistics.median(same), 1)
        out["jbd_serial_16s_pty_split_cores_host_us"] = round(statistics.median(split), 1)
    chunked = await _repeat(lambda: pty_read(piece=PIECE))
    out.update(_spread("jbd_serial_16s_pty_chunked_host_us", chunked))
    out.update(_spread("jbd_tcp_16s_host_us", await _repeat(tcp_read)))
    sim = await _repeat(sim_link_read)
    out["jbd_serial_16s_sim_link_host_us"] = round(statistics.median(sim), 1)
    return out


def main() -> dict[str, float]:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(json.dumps(main()))
