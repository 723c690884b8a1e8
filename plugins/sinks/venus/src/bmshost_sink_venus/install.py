"""``bmshost venus install/uninstall/status``: the files that make bmshost a Venus OS service.

Venus OS keeps only ``/data`` across firmware updates; ``/service`` is RAM and ``/opt`` is
replaced by every update (spec §4). So the truth lives under ``/data/bmshost`` (a virtual
environment that sees the system's dbus-python and PyGObject, the config, the daemontools
templates and a boot script), and the boot hook in ``/data/rc.local`` re-creates the live
service in ``/service`` and the serial-starter template in ``/opt`` after every boot.

Every path hangs off ``root`` so tests install into a temporary tree shaped like a GX. Install
records what it created in a manifest; uninstall removes exactly that and the lines it added.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import attrs

APP = "bmshost"
PORT_TEMPLATE = "bmshost-port"  # serial-starter service template (one instance per tty)
MARKER = "# bmshost venus boot hook"
MANIFEST = "install-manifest.json"
CONFIG_TEMPLATE = """# bmshost configuration (docs/venus.md): one [[batteries]] table per pack.
[host]
poll_interval = 1.0

# [[batteries]]
# driver = "jbd"
# port = "/dev/ttyUSB0"

[sinks.venus]
"""


@attrs.frozen
class Layout:
    """Where everything goes, relative to ``root`` ("/" on a GX)."""

    root: Path

    @property
    def app(self) -> Path:
        return self.root / "data" / APP

    @property
    def venv(self) -> Path:
        return self.app / "venv"

    @property
    def config(self) -> Path:
        return self.app / "bmshost.toml"

    @property
    def service_template(self) -> Path:
        return self.app / "service"

    @property
    def port_template(self) -> Path:
        return self.app / "service-port"

    @property
    def boot_script(self) -> Path:
        return self.app / "boot.sh"

    @property
    def manifest(self) -> Path:
        return self.app / MANIFEST

    @property
    def live_service(self) -> Path:
        return self.root / "service" / APP

    @property
    def opt_template(self) -> Path:
        return self.root / "opt" / "victronenergy" / "service-templates" / PORT_TEMPLATE

    @property
    def serial_starter_conf(self) -> Path:
        return self.root / "data" / "conf" / "serial-starter.d" / f"{APP}.conf"

    @property
    def rc_local(self) -> Path:
        return self.root / "data" / "rc.local"

    def on_device(self, path: Path) -> str:
        """The absolute path as the GX sees it (scripts must not contain the test root)."""
        return "/" + str(path.relative_to(self.root))


def _bin(layout: Layout) -> str:
    return layout.on_device(layout.venv / "bin" / "bmshost")


def run_script(layout: Layout) -> str:
    return f"""#!/bin/sh
# daemontools run script of the bmshost host (installed by `bmshost venus install`).
exec 2>&1
exec {_bin(layout)} run --config {layout.on_device(layout.config)}
"""


def log_script(name: str) -> str:
    # multilog: TAI64N stamps, 4 files of 25 kB, as Venus' own services (flash is small).
    return f"""#!/bin/sh
exec multilog t s25000 n4 /var/log/{name}
"""


def port_run_script(layout: Layout) -> str:
    # serial-starter copies this template per tty and replaces TTY. `venus port` keeps running
    # while the tty belongs to a configured battery (serial-starter then stops probing it and the
    # host, which opens it, is not disturbed) and exits at once otherwise, so the next program in
    # the probe list gets its turn.
    return f"""#!/bin/sh
exec 2>&1
exec {_bin(layout)} venus port TTY --config {layout.on_device(layout.config)}
"""


def serial_starter_conf() -> str:
    return f"""# bmshost: serial ports named in /data/bmshost/bmshost.toml are handed to bmshost.
service {APP} {PORT_TEMPLATE}
alias default gps:vedirect:{APP}
alias rs485 cgwacs:fzsonick:imt:modbus:{APP}
"""


def boot_script(layout: Layout) -> str:
    opt = layout.on_device(layout.opt_template)
    return f"""#!/bin/sh
# Re-creates what a reboot or firmware update removes (run from /data/rc.local).
APP={layout.on_device(layout.app)}
if [ ! -d {opt} ]; then
    remounted=0
    if ! touch /opt/victronenergy/.bmshost-rw 2>/dev/null; then
        mount -o remount,rw / && remounted=1
    fi
    rm -f /opt/victronenergy/.bmshost-rw
    mkdir -p {opt} && cp -a $APP/service-port/. {opt}/
    [ "$remounted" = 1 ] && mount -o remount,ro /
fi
if [ ! -d {layout.on_device(layout.live_service)} ]; then
    cp -a $APP/service {layout.on_device(layout.live_service)}
fi
"""


def rc_local_line(layout: Layout) -> str:
    boot = layout.on_device(layout.boot_script)
    return f"sh {boot} > {layout.on_device(layout.app)}/boot.log 2>&1 &  {MARKER}\n"


def _write(path: Path, text: str, executable: bool, created: list[str], layout: Layout) -> None:
    existed = path.exists()
    _mkdirs(path.parent, created, layout)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755 if executable else 0o644)
    os.replace(tmp, path)
    if not existed:
        created.append(layout.on_device(path))


def _mkdirs(path: Path, created: list[str], layout: Layout) -> None:
    """Create ``path`` and parents, remembering each directory that did not exist."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(layout.on_device(d))


def _service_files(layout: Layout, base: Path, run: str, log_name: str, created: list[str]) -> None:
    _mkdirs(base / "log", created, layout)
    _write(base / "run", run, True, created, layout)
    _write(base / "log" / "run", log_script(log_name), True, created, layout)


@attrs.define
class InstallOptions:
    root: Path = Path("/")
    config: Path | None = None  # copied to /data/bmshost/bmshost.toml
    venv: bool = True
    packages: list[str] = attrs.field(factory=list)  # pip requirements for the venv
    python: str = sys.executable


def install(opts: InstallOptions) -> list[str]:
    """Lay out the host; return the paths created (idempotent: a second run creates nothing)."""
    layout = Layout(opts.root)
    manifest = _load_manifest(layout)
    created: list[str] = []
    _mkdirs(layout.app, created, layout)
    if opts.venv and not (layout.venv / "bin" / "python").exists():
        # --system-site-packages: Venus ships dbus-python and PyGObject, built for its Python.
        subprocess.run(
            [
                opts.python,
                "-m",
                "venv",
                "--system-site-packages",
                "--without-pip",
                str(layout.venv),
            ],
            check=True,
        )
        created.append(layout.on_device(layout.venv))
    if opts.packages:
        pip = [
            str(layout.venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--upgrade",
            *opts.packages,
        ]
        subprocess.run(pip, check=True)
    if opts.config is not None:
        _write(layout.config, Path(opts.config).read_text(), False, created, layout)
    elif not layout.config.exists():
        _write(layout.config, CONFIG_TEMPLATE, False, created, layout)
    _service_files(layout, layout.service_template, run_script(layout), APP, created)
    _service_files(
        layout, layout.port_template, port_run_script(layout), f"{APP}-port.TTY", created
    )
    _write(layout.boot_script, boot_script(layout), True, created, layout)
    _write(layout.serial_starter_conf, serial_starter_conf(), False, created, layout)
    # The live copies: the boot script makes them after each boot; install makes them now.
    for src, dst in (
        (layout.service_template, layout.live_service),
        (layout.port_template, layout.opt_template),
    ):
        if not dst.exists():
            _mkdirs(dst.parent, created, layout)
            shutil.copytree(src, dst, symlinks=True)
            created.append(layout.on_device(dst))
    _add_rc_local(layout, created)
    for path in created:
        if path not in manifest:
            manifest.append(path)
    _save_manifest(layout, manifest)
    return created


def _add_rc_local(layout: Layout, created: list[str]) -> None:
    rc = layout.rc_local
    if rc.exists():
        text = rc.read_text()
        if MARKER in text:
            return
        if text and not text.endswith("\n"):
            text += "\n"
        mode = stat.S_IMODE(rc.stat().st_mode) | 0o755
        rc.write_text(text + rc_local_line(layout))  # append, never overwrite the user's lines
        rc.chmod(mode)
        return
    _write(rc, "#!/bin/bash\n" + rc_local_line(layout), True, created, layout)


def _load_manifest(layout: Layout) -> list[str]:
    try:
        data = json.loads(layout.manifest.read_text())
    except (OSError, ValueError):
        return []
    return [str(p) for p in data.get("created", [])] if isinstance(data, dict) else []


def _save_manifest(layout: Layout, created: list[str]) -> None:
    tmp = layout.manifest.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps({"created": created}, indent=1) + "\n")
    os.replace(tmp, layout.manifest)


def uninstall(root: Path, keep_config: bool = False) -> list[str]:
    """Remove the boot-hook line and everything install created; return what was removed.

    ``keep_config`` keeps ``/data/bmshost/bmshost.toml`` (and so its directory)."""
    layout = Layout(root)
    removed: list[str] = []
    rc = layout.rc_local
    if rc.exists():
        lines = rc.read_text().splitlines(keepends=True)
        kept = [line for line in lines if MARKER not in line]
        if kept != lines:
            rc.write_text("".join(kept))
            removed.append(layout.on_device(rc) + " (boot hook line)")
    created = _load_manifest(layout)
    keep = {layout.on_device(layout.config)} if keep_config else set()
    for device_path in reversed(created):  # children before the directories holding them
        path = root / device_path.lstrip("/")
        if device_path in keep:
            continue
        if keep and device_path == layout.on_device(layout.app):
            for child in path.iterdir():  # everything but the config
                if layout.on_device(child) not in keep:
                    shutil.rmtree(
                        child
                    ) if child.is_dir() and not child.is_symlink() else child.unlink()
            removed.append(device_path + " (config kept)")
            continue
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(device_path)
    return removed


def status(root: Path) -> dict[str, bool]:
    layout = Layout(root)
    rc_hook = layout.rc_local.exists() and MARKER in layout.rc_local.read_text()
    return {
        "app": layout.app.is_dir(),
        "venv": (layout.venv / "bin" / "python").exists(),
        "config": layout.config.exists(),
        "service": (layout.live_service / "run").exists(),
        "serial-starter": layout.serial_starter_conf.exists(),
        "port-template": (layout.opt_template / "run").exists(),
        "boot-hook": rc_hook,
    }
