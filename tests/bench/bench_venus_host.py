"""The whole host with the Venus sink on a private dbus-daemon (issue 4's targets):

* cycle_us_*: host CPU per poll cycle INCLUDING the D-Bus publish — JBD request/response over an
  in-process 16-cell simulator, decode, the default control pipeline, the Venus sink's render
  and diff, and the GLib thread storing the changes and sending the ItemsChanged signal
  (``time.process_time`` counts every thread of the process). The simulated pack runs as in a
  real run: the clock advances 1 s per cycle so SoC, cells and counters move, and the load
  current wanders every cycle (a deterministic pseudo-random walk, as an inverter's load does).
  ``host_only`` subtracts the simulator's own cost, as bench_host.py does. For comparison the
  same cycle without any sink (``no_sink``) and with a steady current are measured too.
* start_to_first_values_ms: spawning ``bmshost run -c FILE`` (sim driver + venus sink, private
  dbus-daemon, the localsettings stand-in running) until a client reads a valid /Dc/0/Voltage.
* rss_mb_8_batteries: resident memory of one ``bmshost run`` serving eight simulated 16-cell
  batteries (eight services) after BENCH_RSS_SECONDS (default 60) of 1 s polling.

    uv run python tests/bench/bench_venus_host.py
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CYCLES = 3000
STARTS = 7
SETTLE = 0.0005  # s between cycles (see _cpu)


class PrivateBus:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-venus-host-"))
        self.address = f"unix:path={self.tmp}/bus"
        out = subprocess.run(
            ["dbus-daemon", "--session", "--fork", "--print-pid=1", f"--address={self.address}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        self.pid = int(out[0])
        from bmshost_sink_venus import localsettings_standin

        self.settings = subprocess.Popen(
            [sys.executable, localsettings_standin.__file__, self.address], stdout=subprocess.PIPE, text=True
        )
        assert self.settings.stdout is not None and self.settings.stdout.readline().strip() == "ready"

    def close(self) -> None:
        self.settings.terminate()
        self.settings.wait(10)
        os.kill(self.pid, signal.SIGTERM)


# -- (a) CPU per cycle -----------------------------------------------------------------------------


async def _cpu(with_sink: bool, wandering: bool, spaced: bool) -> dict[str, float]:
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host
    from bmshost_jbd import codec

    state = tempfile.mkdtemp()
    sinks = {"venus": {"settings_write_delay": 0.0}} if with_sink else {}
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 1.0, "state_dir": state},
            "batteries": [{"driver": "jbd", "port": "sim:jbd?cells=16&soc=50&current=-12", "name": "b"}],
            "sinks": sinks,
        }
    )
    now = [0.0]
    host = Host(config, plugins, clock=lambda: now[0])
    host.build()
    battery = host.batteries[0]
    sim = battery.shared.link.simulator  # type: ignore[attr-defined]
    for sink in host.sinks:
        await sink.start()
        sink.add_battery(battery)
    rng = random.Random(4)
    base = sim.current

    async def cycle() -> None:
        if wandering:
            sim.current = base + rng.uniform(-3.0, 3.0)
        await battery.cycle()
        now[0] += 1.0

    for _ in range(30):  # warm up: connect, the service is created on the GLib thread
        await cycle()
    service = None
    if with_sink:
        entry = next(iter(host.sinks[0].entries.values()))  # type: ignore[attr-defined]
        while entry.service is None:
            await asyncio.sleep(0.001)
            await cycle()
        service = entry.service
    from bmshost_sink_venus import glib_loop

    async def drained() -> None:
        if with_sink:  # every queued D-Bus job has run (GLib idle sources run in order)
            await glib_loop.run(lambda: None)

    await drained()
    sent_before = service.signals_sent if service else 0
    start = time.process_time()
    for i in range(CYCLES):
        await cycle()
        if spaced:
            # Real polls are a second apart: the GLib thread sends the cycle's signal while the
            # main thread waits (no GIL contention), and every cycle starts with cold caches.
            time.sleep(SETTLE)
        elif with_sink and i % 20 == 0:
            await asyncio.sleep(0)
    await drained()
    total = time.process_time() - start
    messages = ((service.signals_sent - sent_before) / CYCLES) if service else 0.0
    for sink in host.sinks:
        await sink.stop()

    start = time.process_time()
    for _ in range(CYCLES):
        sim.feed(codec.READ_BASIC)
        sim.feed(codec.READ_CELLS)
    sim_cost = time.process_time() - start
    key = ("venus" if with_sink else "no_sink") + ("_wandering" if wandering else "_steady_current")
    key += "_spaced" if spaced else ""
    out = {
        f"cycle_us_{key}_host_only": round((total - sim_cost) / CYCLES * 1e6, 1),
        f"cycle_us_{key}_incl_simulator": round(total / CYCLES * 1e6, 1),
    }
    if with_sink:
        out[f"dbus_messages_per_cycle_{key}"] = round(messages, 3)
    return out


# -- (b) start to first values ---------------------------------------------------------------------


def _write_config(tmp: Path, batteries: int, poll: float) -> Path:
    lines = [f'[host]\npoll_interval = {poll}\nstate_dir = "{tmp / "state"}"\n']
    for i in range(batteries):
        lines.append(
            f'[[batteries]]\ndriver = "jbd"\nport = "sim:jbd?cells=16&soc={40 + i}&current=-{5 + i}"\n'
            f'name = "b{i}"\n'
        )
    lines.append("[sinks.venus]\n")
    path = tmp / "bmshost.toml"
    path.write_text("\n".join(lines))
    return path


def _start_to_first_values(bus: PrivateBus) -> dict[str, Any]:
    import dbus
    import dbus.bus
    import dbus.mainloop

    tmp = Path(tempfile.mkdtemp())
    config = _write_config(tmp, 1, 1.0)
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.address)
    # No main-loop integration: this thread makes blocking calls only, and the GLib thread of
    # this process must not serve (and race on) a connection it never created.
    client = dbus.bus.BusConnection(bus.address, mainloop=dbus.mainloop.NULL_MAIN_LOOP)
    client.set_exit_on_disconnect(False)
    times = []
    for _ in range(STARTS):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bmshost.cli", "run", "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        try:
            while True:
                names = [str(n) for n in client.list_names() if str(n).startswith("com.victronenergy.battery.")]
                if names:
                    try:
                        value = client.get_object(names[0], "/Dc/0/Voltage", introspect=False).GetValue(
                            dbus_interface="com.victronenergy.BusItem"
                        )
                    except dbus.exceptions.DBusException:
                        value = None
                    if isinstance(value, float):
                        break
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError("no values within 30 s")
                time.sleep(0.002)
            times.append((time.perf_counter() - t0) * 1000)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        while any(str(n).startswith("com.victronenergy.battery.") for n in client.list_names()):
            time.sleep(0.01)
    client.close()
    return {
        "start_to_first_values_ms_min": round(min(times)),
        "start_to_first_values_ms_median": round(statistics.median(times)),
        "start_to_first_values_ms_max": round(max(times)),
    }


# -- (c) memory with eight batteries ---------------------------------------------------------------


def _rss_eight(bus: PrivateBus, seconds: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp())
    config = _write_config(tmp, 8, 1.0)
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.address)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bmshost.cli", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )

    def cpu_seconds() -> float:
        with open(f"/proc/{proc.pid}/stat") as fh:
            parts = fh.read().split()
        return (int(parts[13]) + int(parts[14])) / os.sysconf("SC_CLK_TCK")

    def status() -> dict[str, str]:
        with open(f"/proc/{proc.pid}/status") as fh:
            return dict(line.split(":", 1) for line in fh)

    try:
        warm = min(10.0, seconds / 2)
        time.sleep(warm)
        cpu_warm = cpu_seconds()
        time.sleep(seconds - warm)
        fields = status()
        cpu = cpu_seconds()
        names = subprocess.run(
            ["dbus-send", f"--bus={bus.address}", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames"],
            capture_output=True, text=True, check=True,
        ).stdout.count("com.victronenergy.battery.")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return {
        f"rss_mb_8_batteries_after_{seconds:.0f}s": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "services_8_batteries": names,
        "threads_8_batteries": int(fields["Threads"]),
        # 1 s polls of 8 batteries: CPU per second / 8 = CPU per battery poll, all included.
        "run_cpu_ms_per_battery_poll_8_batteries": round((cpu - cpu_warm) / (seconds - warm) / 8 * 1000, 2),
    }


def main() -> dict[str, Any]:
    bus = PrivateBus()
    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    out: dict[str, Any] = {}
    try:
        for with_sink in (False, True):
            for wandering, spaced in ((True, False), (False, False), (True, True)):
                out.update(asyncio.run(_cpu(with_sink, wandering, spaced)))
        out.update(_start_to_first_values(bus))
        out.update(_rss_eight(bus, float(os.environ.get("BENCH_RSS_SECONDS", "60"))))
    finally:
        bus.close()
        if old is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = old
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
