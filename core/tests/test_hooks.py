"""One test per hook, through an installed test distribution that implements all of them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PLUGIN = '''
import attrs
from bmshost.hookspecs import hookimpl
from bmshost.registry import CommandSpec, TransportSpec
from bmshost.sink import Sink, SinkSpec
from bmshost.stage import Stage, StageSpec
from bmshost.capabilities import Capability

EVENTS = []


class Echo(Sink):
    name = "echo"
    def __init__(self, ctx):
        self.prefix = ctx.options.prefix
    def publish(self, battery, update):
        EVENTS.append((self.prefix, battery.name, update.online))


@attrs.define(kw_only=True)
class EchoOptions:
    prefix: str = "x"


class HalfCurrent(Stage):
    name = "half_current"
    def step(self, step):
        if step.limits.ccl is not None:
            step.limits.ccl = step.limits.ccl / 2
            step.limits.ccl_set_by = self.name


def _needs_balancing(capabilities, options):
    ok = Capability.BALANCING_STATUS in capabilities
    return ok, "BMS reports balancing" if ok else "BMS has no balancing status"


def _make_sim_link(url, params):
    from bmshost.transports.sim import open_sim_link
    from bmshost.url import LinkUrl
    from bmshost_jbd.simulator import JbdSimulator
    return open_sim_link(LinkUrl("sim", "jbd", {}, url.raw), params, simulator=JbdSimulator(cells=4))


@hookimpl
def bmshost_register_transports(registry):
    registry.add(TransportSpec(name="hooktest", schemes=("hooktest",), kind="stream", factory=_make_sim_link))


@hookimpl
def bmshost_register_stages(registry):
    registry.add(StageSpec(name="half_current", order=950, factory=lambda ctx: HalfCurrent(),
                           predicate=_needs_balancing))


@hookimpl
def bmshost_register_sinks(registry):
    registry.add(SinkSpec(name="echo", factory=Echo, options=EchoOptions))


def _configure(parser):
    parser.add_argument("--shout", action="store_true")


def _run(args):
    print("HOOKTEST SHOUTS" if args.shout else "hooktest")
    return 7


@hookimpl
def bmshost_register_commands(registry):
    registry.add(CommandSpec(name="hooktest", help="a test command", configure=_configure, run=_run))


@hookimpl
def bmshost_startup(host):
    EVENTS.append(("startup", len(host.batteries)))


@hookimpl
def bmshost_shutdown(host):
    EVENTS.append(("shutdown", len(host.batteries)))
'''


@pytest.fixture
def hooktest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    pkg = tmp_path / "bmst_hooktest"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "bmshost_hooktest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bmshost-hooktest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[bmshost]\nstage.hooktest = bmst_hooktest.plugin\ntransport.hooktest = bmst_hooktest.plugin\n"
        "sink.echo = bmst_hooktest.plugin\ncli.hooktest = bmst_hooktest.plugin\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("bmst_hooktest.plugin")
    module.EVENTS.clear()
    yield module
    for name in [m for m in sys.modules if m.startswith("bmst_hooktest")]:
        del sys.modules[name]


async def test_transport_stage_sink_and_lifecycle_hooks(hooktest: Any, tmp_path: Path) -> None:
    """bmshost_register_transports, bmshost_register_stages, bmshost_register_sinks,
    bmshost_startup and bmshost_shutdown, all through a real host run."""
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host

    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 0.05, "state_dir": str(tmp_path)},
            "batteries": [{"driver": "jbd", "port": "hooktest:anything", "name": "b1"}],
            "sinks": {"echo": {"prefix": "p"}},
        }
    )
    host = Host(config, plugins)
    assert "[x] half_current: BMS reports balancing" in host.explain()
    await host.run(duration=0.3)
    events = hooktest.EVENTS
    assert events[0] == ("startup", 1) and events[-1] == ("shutdown", 1)
    published = [e for e in events if e[0] == "p"]
    assert published and published[-1] == ("p", "b1", True)
    update = host.batteries[0].latest
    assert update is not None and update.limits is not None
    assert update.limits.ccl_set_by == "half_current"


def test_command_hook_through_the_cli(hooktest: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """bmshost_register_commands: `bmshost hooktest --shout` reaches the plugin's command."""
    from bmshost.cli import main

    assert main(["hooktest", "--shout"]) == 7
    assert "HOOKTEST SHOUTS" in capsys.readouterr().out
    assert main(["nosuchcommand"]) == 2


def test_unknown_sink_option_is_validated(hooktest: Any) -> None:
    from bmshost.cli.common import prepare_dict
    from bmshost.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sinks\.echo\.colour: unknown key"):
        prepare_dict({"sinks": {"echo": {"colour": "red"}}})
