"""``bmshost detect`` against every serial family's simulator on a pseudo-terminal.

A pty ignores the baud rate, so every simulator here hears every other family's probe first: the
test shows both that the right family is named and that foreign probes are not mistaken for it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from bmshost.cli import detect_cmd
from bmshost.detect import detect
from bmshost.driver import DriverSpec
from bmshost.lazy import resolve
from bmshost.plugins import load_plugins
from bmshost.testing import PtySimulator, make_simulator
from bmshost.url import LinkUrl, parse_link_url

pytestmark = pytest.mark.e2e

CASES = [
    ("jbd", "serial", {}),
    ("jbd", "up16s", {}),
    ("jk", "serial", {}),
    ("jk", "pb", {}),
    ("daly", "serial", {}),
    ("seplos", "serial", {}),
    ("seplos", "v3", {}),
]


@pytest.fixture(scope="module")
def drivers() -> dict[str, DriverSpec]:
    regs = load_plugins().registries
    return {name: spec for name in regs.drivers.names() if (spec := regs.drivers.get(name))}


def _args(port: str, *extra: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    detect_cmd.configure(parser)
    return parser.parse_args(["--port", port, *extra])


async def test_every_serial_family_is_named_and_only_it(
    drivers: dict[str, DriverSpec], pty_simulator: Callable[..., PtySimulator]
) -> None:
    # all ports at once: a full probe round with nothing else answering takes seconds per port
    sims = [pty_simulator(make_simulator(drivers[f], v, **p)) for f, v, p in CASES]
    regs = load_plugins().registries

    def make_link(url: LinkUrl, params: Mapping[str, Any]) -> Any:
        spec = regs.transports.for_scheme(url.scheme)
        assert spec is not None
        return resolve(spec.factory)(url, params)

    results = await asyncio.gather(
        *(detect(parse_link_url(sim.path), make_link, regs.drivers, find_all=True) for sim in sims)
    )
    for (family, variant, _), found in zip(CASES, results, strict=True):
        assert [(f.driver, f.variant) for f in found] == [(family, variant)]
        assert found[0].reply  # what answered, for the log


def test_first_answer_prints_a_config_snippet(
    drivers: dict[str, DriverSpec],
    pty_simulator: Callable[..., PtySimulator],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = pty_simulator(make_simulator(drivers["jk"], "pb"))
    assert detect_cmd.run(_args(sim.path, "--driver", "jk")) == 0
    out = capsys.readouterr().out
    assert "# jk/pb answered (baud=115200)" in out
    assert f'[[batteries]]\ndriver = "jk"\nvariant = "pb"\nport = "{sim.path}"\naddress = 1' in out


def test_only_the_named_families_are_probed(
    drivers: dict[str, DriverSpec],
    pty_simulator: Callable[..., PtySimulator],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = pty_simulator(make_simulator(drivers["jbd"], "serial"))
    assert detect_cmd.run(_args(sim.path, "--driver", "jk", "--driver", "daly")) == 1
    assert "no installed BMS family answered" in capsys.readouterr().err


def test_a_silent_port_ends_with_a_clear_answer(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = os.openpty()  # nobody answers on the far end
    try:
        start = time.monotonic()
        assert detect_cmd.run(_args(os.ttyname(slave), "--driver", "seplos")) == 1
        assert time.monotonic() - start < 60  # bounded by the probes' timeouts, not a hang
    finally:
        os.close(master)
        os.close(slave)
    assert "no installed BMS family answered" in capsys.readouterr().err


def test_mistakes_are_one_line_each() -> None:
    cli = [sys.executable, "-m", "bmshost.cli", "detect"]
    bad_family = subprocess.run([*cli, "--port", "/dev/null", "--driver", "jbdx"],
                                capture_output=True, text=True, timeout=60)
    assert bad_family.returncode == 2 and "unknown family jbdx" in bad_family.stderr
    missing = subprocess.run([*cli, "--port", "/dev/ttyNOPE9"], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.count("\n") == 1, missing.stderr
