"""End to end: the `bmshost` command in separate processes against `bmshost simulate jbd --pty`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from bmshost_jbd.simulator import JbdSimulator

pytestmark = pytest.mark.e2e

BMSHOST = [sys.executable, "-m", "bmshost.cli"]


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BMSHOST, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )


@pytest.fixture
def simulator() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = _spawn("simulate", "jbd", "--pty", "--set", "cells=16", "--set", "soc=64",
                  "--set", "current=-30", "--set", "capacity=50", "--speed", "600")
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    assert path.startswith("/dev/pts/"), path
    yield proc, path
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _json_lines(stream: IO[str], count: int, timeout: float) -> Iterator[dict]:
    deadline = time.monotonic() + timeout
    got = 0
    while got < count and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if line.startswith("{"):
            got += 1
            yield json.loads(line)


def test_read_json_equals_simulator_state() -> None:
    proc = _spawn("simulate", "jbd", "--pty", "--set", "cells=16", "--set", "soc=64", "--set", "current=0")
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        out = subprocess.run(
            [*BMSHOST, "read", "--driver", "jbd", "--port", path, "--json"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        sample = json.loads(out.stdout)
        truth = JbdSimulator(cells=16, soc=64, current=0).state().to_json_dict()
        for key in ("voltage", "current", "soc", "cell_voltages", "capacity_ah", "remaining_ah",
                    "temperatures", "mosfet_temperature", "charge_fet", "discharge_fet", "cycles", "model"):
            assert sample[key] == truth[key], key
        table = subprocess.run(
            [*BMSHOST, "read", "--driver", "jbd", "--port", f"serial://{path}?baud=9600"],
            capture_output=True, text=True, timeout=30,
        )
        assert table.returncode == 0 and "cell_voltages" in table.stdout and "voltage" in table.stdout
    finally:
        proc.terminate()
        proc.wait(5)


def test_read_from_a_missing_port_fails_with_one_line() -> None:
    out = subprocess.run(
        [*BMSHOST, "read", "--driver", "jbd", "--port", "/dev/ttyNOPE0", "--json"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "no such device" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_shows_changing_values_goes_stale_and_recovers(
    simulator: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    sim, path = simulator
    config = tmp_path / "bmshost.toml"
    config.write_text(
        "[host]\npoll_interval = 0.2\nrequest_timeout = 0.2\nretries = 0\nstale_after = 1.0\n"
        f"reconnect_min = 0.2\nreconnect_max = 0.5\nstate_dir = \"{tmp_path}\"\n\n"
        f"[[batteries]]\ndriver = \"jbd\"\nport = \"{path}\"\nname = \"house\"\n\n[sinks.console]\n"
    )
    host = _spawn("run", "-c", str(config), "--json")
    try:
        assert host.stdout is not None
        first = list(_json_lines(host.stdout, 10, 20))
        assert len(first) == 10 and all(r["online"] for r in first[2:])
        socs = {r["soc"] for r in first}
        volts = {r["voltage"] for r in first}
        assert len(socs) > 1 or len(volts) > 1  # the pack is discharging: values move
        assert first[-1]["limits"]["cvl"] > 0 and "charge_limitation" in first[-1]["limits"]

        os.kill(sim.pid, signal.SIGUSR1)  # the BMS falls silent
        stale = next((r for r in _json_lines(host.stdout, 60, 20) if r["stale"]), None)
        assert stale is not None and not stale["online"]
        assert stale["voltage"] > 0  # last good values remain visible

        os.kill(sim.pid, signal.SIGUSR1)  # and answers again: no restart needed
        back = next((r for r in _json_lines(host.stdout, 100, 30) if r["online"] and not r["stale"]), None)
        assert back is not None
        assert host.poll() is None
    finally:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(10)
        except subprocess.TimeoutExpired:
            host.kill()
            raise
    assert host.returncode == 0
    assert (tmp_path / "house.json").exists()  # state saved on shutdown


def test_config_with_unknown_key_exits_2_with_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[batteries]]\ndriver = "jbd"\nport = "/dev/ttyUSB0"\nbaudrate = 9600\n')
    for args in (["run", "-c", str(config)], ["config", "check", str(config)]):
        out = subprocess.run([*BMSHOST, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 2
        assert "batteries[0].baudrate: unknown key" in out.stderr
        assert "Traceback" not in out.stderr


def test_config_check_ok_and_unknown_driver(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[batteries]]\ndriver = "jbd"\nport = "/dev/ttyUSB0"\n[sinks.console]\n')
    out = subprocess.run([*BMSHOST, "config", "check", str(good)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "OK (1 batteries; sinks: console)" in out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[batteries]]\ndriver = "jbdx"\nport = "/dev/ttyUSB0"\n')
    out = subprocess.run([*BMSHOST, "config", "check", str(bad)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "batteries[0].driver: unknown driver 'jbdx' (installed: " in out.stderr


def test_decode_frames_from_a_log() -> None:
    basic = "dd03001b1700000002d003e8000020780000000000001048030f020b760b82fbff77"
    cells = "dd0400080f450f3d0f370f3dfec677"
    out = subprocess.run([*BMSHOST, "decode", "--driver", "jbd", basic, cells], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    sample = json.loads(out.stdout)
    assert sample["voltage"] == 58.88 and sample["cell_voltages"] == [3.909, 3.901, 3.895, 3.901]
    bad = subprocess.run([*BMSHOST, "decode", "--driver", "jbd", basic[:-4] + "fe77"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "checksum" in bad.stderr
    err = subprocess.run([*BMSHOST, "decode", "--driver", "jbd", "dd048000ff8077"], capture_output=True, text=True, timeout=30)
    assert err.returncode == 1 and "error reply" in err.stderr


def test_demo_runs_and_capture_replays(tmp_path: Path) -> None:
    capture = tmp_path / "cap.json"
    out = subprocess.run([*BMSHOST, "run", "--demo", "--json", "--duration", "1.5", "--capture", str(capture)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    records = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    assert records and records[-1]["battery"] == "demo" and len(records[-1]["cell_voltages"]) == 16
    data = json.loads(capture.read_text())
    assert data["format"] == "bmshost-capture/1" and data["driver"] == "jbd"
    assert data["exchanges"][0]["tx"] == "dda50500fffb77"
    replayed = subprocess.run(
        [*BMSHOST, "read", "--driver", "jbd", "--port", f"replay:{capture}", "--json"],
        capture_output=True, text=True, timeout=30,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["cell_voltages"] == records[0]["cell_voltages"]


def test_plugins_listing_and_matrix() -> None:
    out = subprocess.run([*BMSHOST, "plugins", "--matrix"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Feature") and "jbd serial" in lines[0]
    row = next(x for x in lines if x.startswith("Disable charging via driver on BMS"))
    assert "Yes" in row
    listing = subprocess.run([*BMSHOST, "plugins", "--json"], capture_output=True, text=True, timeout=30)
    data = json.loads(listing.stdout)
    jbd = next(p for p in data if p["name"] == "bmshost-jbd")
    assert "soc_reset" in jbd["drivers"][0]["variants"]["serial"]


def test_simulate_over_tcp_and_read_through_a_gateway_url() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _spawn("simulate", "jbd", "--tcp", str(port), "--set", "cells=8", "--set", "current=0")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"tcp://127.0.0.1:{port}"
        out = subprocess.run(
            [*BMSHOST, "read", "--driver", "jbd", "--port", f"tcp://127.0.0.1:{port}", "--json"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)["cell_voltages"]) == 8
    finally:
        proc.terminate()
        proc.wait(5)
