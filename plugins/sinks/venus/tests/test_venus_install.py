"""`bmshost venus install/uninstall/status` against a temporary tree shaped like a GX."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bmshost_sink_venus import cli
from bmshost_sink_venus.install import MARKER, InstallOptions, install, status, uninstall


def _gx(root: Path) -> None:
    """What a GX has before we come: /data/conf, a user rc.local, /service, /opt templates."""
    (root / "data" / "conf" / "serial-starter.d").mkdir(parents=True)
    (root / "data" / "rc.local").write_text("#!/bin/bash\necho user line\n")
    (root / "data" / "rc.local").chmod(0o755)
    (root / "service").mkdir()
    (root / "opt" / "victronenergy" / "service-templates").mkdir(parents=True)


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
            out[str(p.relative_to(root))] = (stat.S_IMODE(p.lstat().st_mode), data)
    return out


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_install_lays_out_the_host_and_uninstall_restores_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "gx"
    _gx(root)
    before = _snapshot(root)
    config = tmp_path / "my.toml"
    config.write_text('[[batteries]]\ndriver = "jbd"\nport = "/dev/ttyUSB0"\n[sinks.venus]\n')
    created = install(InstallOptions(root=root, config=config, venv=True))
    app = root / "data" / "bmshost"
    # The venv sees the system's dbus-python/PyGObject.
    cfg = (app / "venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    assert (app / "bmshost.toml").read_text() == config.read_text()
    run = app / "service" / "run"
    assert _mode(run) == 0o755 and _mode(app / "service" / "log" / "run") == 0o755
    assert (
        "exec /data/bmshost/venv/bin/bmshost run --config /data/bmshost/bmshost.toml"
        in run.read_text()
    )
    assert str(tmp_path) not in run.read_text()  # scripts name device paths, not the test root
    assert "multilog t s25000 n4 /var/log/bmshost" in (app / "service" / "log" / "run").read_text()
    port_run = root / "opt/victronenergy/service-templates/bmshost-port/run"
    assert "venus port TTY --config /data/bmshost/bmshost.toml" in port_run.read_text()
    assert _mode(port_run) == 0o755
    assert (root / "service/bmshost/run").read_text() == run.read_text()
    conf = (root / "data/conf/serial-starter.d/bmshost.conf").read_text()
    assert "service bmshost bmshost-port" in conf and "alias default gps:vedirect:bmshost" in conf
    rc = (root / "data" / "rc.local").read_text()
    assert rc.startswith("#!/bin/bash\necho user line\n")  # appended, never overwritten
    assert rc.count(MARKER) == 1 and "sh /data/bmshost/boot.sh" in rc
    assert _mode(root / "data" / "rc.local") == 0o755
    boot = (app / "boot.sh").read_text()
    assert "cp -a $APP/service /service/bmshost" in boot
    assert "/opt/victronenergy/service-templates/bmshost-port" in boot
    assert _mode(app / "boot.sh") == 0o755
    assert all(status(root).values())
    # The boot script itself is valid sh.
    subprocess.run(["sh", "-n", str(app / "boot.sh")], check=True)
    # Idempotent: a second install creates nothing and adds no second boot line.
    snap = _snapshot(root)
    assert install(InstallOptions(root=root, config=config, venv=True)) == []
    assert _snapshot(root) == snap
    assert "/data/bmshost" in created
    removed = uninstall(root)
    assert "/data/bmshost" in removed
    assert _snapshot(root) == before
    assert not any(status(root).values())


def test_install_creates_rc_local_when_missing_and_keeps_an_existing_config(tmp_path: Path) -> None:
    root = tmp_path / "gx"
    (root / "data").mkdir(parents=True)
    install(InstallOptions(root=root, venv=False))
    rc = root / "data" / "rc.local"
    assert rc.read_text().startswith("#!/bin/bash\n") and _mode(rc) == 0o755
    config = root / "data" / "bmshost" / "bmshost.toml"
    assert "[sinks.venus]" in config.read_text()  # a template to edit
    config.write_text("# edited by the user\n")
    install(InstallOptions(root=root, venv=False))
    assert config.read_text() == "# edited by the user\n"
    uninstall(root)
    assert sorted(p.name for p in (root / "data").iterdir()) == []


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(list(argv))


def test_cli_install_status_uninstall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "gx"
    _gx(root)
    assert cli.run(_args("status", "--root", str(root))) == 1
    assert cli.run(_args("install", "--root", str(root), "--no-venv")) == 0
    assert "created /data/bmshost/service/run" in capsys.readouterr().out
    assert cli.run(_args("install", "--root", str(root), "--no-venv")) == 0
    assert "nothing to do" in capsys.readouterr().out
    code = cli.run(_args("status", "--root", str(root)))
    out = capsys.readouterr().out
    assert "boot-hook" in out and code == 1  # everything but the venv (--no-venv)
    (root / "data/bmshost/bmshost.toml").write_text("# mine\n")
    assert cli.run(_args("uninstall", "--root", str(root), "--keep-config")) == 0
    assert "removed /data/bmshost (config kept)" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "data/bmshost").iterdir()) == ["bmshost.toml"]
    assert not (root / "service/bmshost").exists()


def test_port_helper_exits_for_foreign_ports_and_holds_ours(tmp_path: Path) -> None:
    config = tmp_path / "bmshost.toml"
    config.write_text('[[batteries]]\ndriver = "jbd"\nport = "/dev/ttyUSB0"\n')
    assert cli.configured_ports(config) >= {"/dev/ttyUSB0", "ttyUSB0"}
    assert cli.run(_args("port", "ttyUSB1", "--config", str(config))) == 0  # returns at once
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(config)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert "holding" in proc.stdout.readline()
    assert proc.poll() is None  # still running: serial-starter leaves the port alone
    proc.terminate()
    assert proc.wait(timeout=10) == 0


_HOLD = """
import argparse, sys
from bmshost_sink_venus import cli
p = argparse.ArgumentParser(); cli.configure(p)
sys.exit(cli.run(p.parse_args(["port", "ttyUSB0", "--config", sys.argv[1]])))
"""
