"""Plugin discovery and isolation, with real distributions laid out on sys.path.

A distribution here is exactly what pip installs: a package directory and a ``*.dist-info``
directory with ``METADATA`` and ``entry_points.txt``; importlib.metadata finds it on sys.path.
"""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from bmshost.plugins import Selection, load_plugins

GOOD = '''
from bmshost.capabilities import BASIC
from bmshost.driver import DriverSpec, VariantSpec
from bmshost.hookspecs import hookimpl

@hookimpl
def bmshost_register_drivers(registry):
    registry.add(DriverSpec(name="{driver}", variants=(VariantSpec(
        name="serial", transports=("stream",), capabilities=BASIC, session="x:y"),)))
'''
RAISES = "raise RuntimeError('boom at import')\n"
TYPO = '''
from bmshost.hookspecs import hookimpl

@hookimpl
def bmshost_register_driver(registry):
    pass
'''


def _install(root: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    pkg = root / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[bmshost]\n{ep_name} = {module}.plugin\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("BMSHOST_PLUGINS", raising=False)
    monkeypatch.delenv("BMSHOST_DISABLE_PLUGINS", raising=False)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("bmst_")]:
        del sys.modules[name]


def test_distribution_found_by_entry_point(site: Path) -> None:
    _install(site, "bmshost-acme", "bmst_acme", GOOD.format(driver="acme"), "driver.acme")
    manager = load_plugins()
    assert "acme" in manager.registries.drivers
    status = manager.status["bmshost-acme"]
    assert status.loaded and status.version == "1.2.3"
    assert status.registered == {"drivers": ["acme"]}


def test_selection_imports_only_what_is_used(site: Path) -> None:
    _install(site, "bmshost-acme", "bmst_acme", GOOD.format(driver="acme"), "driver.acme")
    manager = load_plugins(Selection(drivers=frozenset({"jbd"}), schemes=frozenset(), sinks=frozenset()))
    assert "acme" not in manager.registries.drivers
    assert "bmst_acme.plugin" not in sys.modules


def test_allow_and_block_lists(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(site, "bmshost-acme", "bmst_acme", GOOD.format(driver="acme"), "driver.acme")
    assert "acme" not in load_plugins(block=["acme"]).registries.drivers
    assert "acme" not in load_plugins(block=["bmshost-acme"]).registries.drivers
    only = load_plugins(allow=["driver.acme"]).registries.drivers
    assert only.names() == ["acme"]
    monkeypatch.setenv("BMSHOST_DISABLE_PLUGINS", "acme, other")
    assert "acme" not in load_plugins().registries.drivers
    monkeypatch.delenv("BMSHOST_DISABLE_PLUGINS")
    monkeypatch.setenv("BMSHOST_PLUGINS", "bmshost-acme")
    assert load_plugins().registries.drivers.names() == ["acme"]


def test_plugin_raising_on_import_is_skipped_and_reported(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    _install(site, "bmshost-broken", "bmst_broken", RAISES, "driver.broken")
    _install(site, "bmshost-acme", "bmst_acme", GOOD.format(driver="acme"), "driver.acme")
    with caplog.at_level(logging.ERROR, "bmshost.plugins"):
        manager = load_plugins()
    status = manager.status["bmshost-broken"]
    assert not status.loaded and status.error is not None and "boom at import" in status.error
    assert "driver.broken" in caplog.text and "boom at import" in caplog.text
    assert "acme" in manager.registries.drivers  # the others keep working


def test_duplicate_driver_is_refused(site: Path) -> None:
    _install(site, "bmshost-acme", "bmst_acme", GOOD.format(driver="acme"), "driver.acme")
    _install(site, "bmshost-acme2", "bmst_acme2", GOOD.format(driver="acme"), "driver.acme2")
    manager = load_plugins()
    errors = {s.name: s.error for s in manager.errors}
    assert "bmshost-acme2" in errors
    assert "already registered by plugin 'bmshost-acme'" in (errors["bmshost-acme2"] or "")
    assert manager.registries.drivers.owner("acme") == "bmshost-acme"


def test_duplicate_of_a_builtin_driver_name_is_refused(site: Path) -> None:
    _install(site, "bmshost-fakejbd", "bmst_fakejbd", GOOD.format(driver="jbd"), "driver.zzjbd")
    manager = load_plugins()
    assert manager.registries.drivers.owner("jbd") == "bmshost-jbd"
    assert manager.status["bmshost-fakejbd"].error


def test_misspelled_hook_is_caught(site: Path) -> None:
    _install(site, "bmshost-typo", "bmst_typo", TYPO, "driver.typo")
    manager = load_plugins()
    error = manager.status["bmshost-typo"].error or ""
    assert "unknown hook(s) bmshost_register_driver" in error
    assert "bmshost_register_drivers" in error  # the message names the right spelling
    manager.pm.check_pending()  # nothing unknown is left registered


def test_check_pending_guards_the_manager() -> None:
    import pluggy

    from bmshost.hookspecs import hookimpl
    from bmshost.plugins import PluginManager

    class Typo:
        @hookimpl
        def bmshost_register_sink(self, registry: object) -> None: ...

    manager = PluginManager()
    manager.pm.register(Typo())
    with pytest.raises(pluggy.PluginValidationError):
        manager.pm.check_pending()


def test_builtins_register_through_the_same_hooks() -> None:
    manager = load_plugins(Selection(drivers=frozenset(), schemes=frozenset(), sinks=frozenset()))
    regs = manager.registries
    assert {"sim", "replay"} <= set(regs.transports.names())
    assert "console" in regs.sinks
    assert regs.transports.owner("sim") == "bmshost.builtins"


def test_lifecycle_hooks_are_called_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    import types

    from bmshost.hookspecs import hookimpl
    from bmshost.plugins import PluginManager

    calls: list[str] = []
    good = types.ModuleType("bmst_life_good")
    bad = types.ModuleType("bmst_life_bad")

    @hookimpl
    def bmshost_startup(host: object) -> None:
        calls.append("startup")

    @hookimpl
    def bmshost_shutdown(host: object) -> None:
        calls.append("shutdown")

    @hookimpl
    def bmshost_startup_bad(host: object) -> None:
        raise RuntimeError("nope")

    good.bmshost_startup = bmshost_startup  # type: ignore[attr-defined]
    good.bmshost_shutdown = bmshost_shutdown  # type: ignore[attr-defined]
    bad.bmshost_startup = bmshost_startup_bad  # type: ignore[attr-defined]
    manager = PluginManager()
    manager.load(Selection(drivers=frozenset(), schemes=frozenset(), sinks=frozenset()), extra_modules=[good, bad])
    with caplog.at_level(logging.ERROR):
        manager.call_lifecycle("bmshost_startup", host=None)
        manager.call_lifecycle("bmshost_shutdown", host=None)
    assert calls == ["startup", "shutdown"]
    assert "nope" in caplog.text
