"""Finding, filtering and loading plugins; calling their registration hooks in isolation.

Plugins are entry points of group ``bmshost``. The entry-point *name* says what a plugin provides,
so the host can pick the ones a configuration uses without importing the others:

* ``driver.<family>`` (``driver.jbd``), ``transport.<scheme>`` (one per URL scheme served;
  several may point at one module), ``sink.<name>``: loaded by ``bmshost run`` only when used;
* anything else (``stage.<name>``, ``tools``): always loaded.

Built-in plugins (the core's stages, console sink, sim/replay transports) are registered through
the same hooks. A plugin that fails to import, implements a hook that does not exist (a typo) or
registers something invalid is disabled with its name and the reason logged; the rest carry on.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import attrs
import pluggy

from bmshost import hookspecs
from bmshost.errors import PluginError
from bmshost.registry import Registries

log = logging.getLogger("bmshost.plugins")

ENTRY_POINT_GROUP = "bmshost"
REGISTRATION_HOOKS: tuple[tuple[str, str], ...] = (
    ("bmshost_register_drivers", "drivers"),
    ("bmshost_register_transports", "transports"),
    ("bmshost_register_stages", "stages"),
    ("bmshost_register_sinks", "sinks"),
    ("bmshost_register_commands", "commands"),
)
BUILTIN_MODULES: tuple[str, ...] = ("bmshost.builtins",)
SELECTIVE_KINDS = ("driver", "transport", "sink", "cli")


@attrs.define
class PluginStatus:
    """One plugin as ``bmshost plugins`` shows it."""

    name: str  # entry-point name, or the module for built-ins
    module: str
    distribution: str = "bmshost"
    version: str = ""
    loaded: bool = False
    error: str | None = None
    registered: dict[str, list[str]] = attrs.field(factory=dict)


@attrs.frozen
class Selection:
    """What a configuration uses; ``None`` means everything (``plugins`` command, tests)."""

    drivers: frozenset[str] | None = None
    schemes: frozenset[str] | None = None
    sinks: frozenset[str] | None = None
    commands: frozenset[str] | None = None

    def wants(self, ep_name: str) -> bool:
        kind, _, what = ep_name.partition(".")
        if kind == "driver" and self.drivers is not None:
            return what in self.drivers
        if kind == "transport" and self.schemes is not None:
            return what in self.schemes
        if kind == "sink" and self.sinks is not None:
            return what in self.sinks
        if kind == "cli" and self.commands is not None:
            return what in self.commands
        return True


def _split_env(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def _matches(patterns: Iterable[str], ep: EntryPoint | None, module: str) -> bool:
    names = {module}
    if ep is not None:
        names.add(ep.name)
        names.add(ep.name.partition(".")[2] or ep.name)
        if ep.dist is not None:
            names.add(ep.dist.name)
    return any(p in names for p in patterns)


class PluginManager:
    """Owns the pluggy manager, the registries and the per-plugin status."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.status: dict[str, PluginStatus] = {}

    # -- loading -------------------------------------------------------------------------------

    def load(
        self,
        selection: Selection | None = None,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        builtins: bool = True,
        extra_modules: Iterable[ModuleType] = (),
    ) -> None:
        """Load built-ins and entry-point plugins, then run the registration hooks.

        ``allow``/``block`` come from configuration; ``BMSHOST_PLUGINS`` (allow-list) and
        ``BMSHOST_DISABLE_PLUGINS`` (block-list) in the environment extend them. Entries match an
        entry-point name (``driver.jbd``), its short name (``jbd``) or a distribution
        (``bmshost-jbd``).
        """
        selection = selection or Selection()
        allow_list = list(allow) if allow is not None else None
        env_allow = _split_env("BMSHOST_PLUGINS")
        if env_allow is not None:
            allow_list = (allow_list or []) + env_allow
        block_list = list(block) + (_split_env("BMSHOST_DISABLE_PLUGINS") or [])

        if builtins:
            for module_name in BUILTIN_MODULES:
                self._register_module(module_name, importlib.import_module(module_name), None)
        for module in extra_modules:
            self._register_module(module.__name__, module, None)

        loaded_modules: dict[str, str] = {}
        # Provider entry points first, so a module's status is named after what it provides.
        ordered = sorted(
            entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name.startswith("cli."), e.name)
        )
        for ep in ordered:
            if not selection.wants(ep.name):
                continue
            if _matches(block_list, ep, ep.value):
                log.info("plugin %s disabled by the block-list", ep.name)
                continue
            if allow_list is not None and not _matches(allow_list, ep, ep.value):
                log.info("plugin %s not in the allow-list; skipped", ep.name)
                continue
            if ep.value in loaded_modules:  # several entry points, one module (transport schemes)
                continue
            loaded_modules[ep.value] = ep.name
            dist_name = ep.dist.name if ep.dist else ep.name
            status = PluginStatus(
                name=dist_name if dist_name not in self.status else ep.name,
                module=ep.value,
                distribution=ep.dist.name if ep.dist else "?",
                version=ep.dist.version if ep.dist else "",
            )
            self.status[status.name] = status
            try:
                module = ep.load()
            except Exception as exc:  # any import failure must not take the host down
                status.error = f"import failed: {type(exc).__name__}: {exc}"
                log.error("plugin %s (%s) skipped: %s", ep.name, status.distribution, status.error)
                continue
            self._register_module(status.name, module, status)

        self._call_registrations()
        # Safety net: every remaining implementation must match a hookspec.
        self.pm.check_pending()

    def _register_module(self, name: str, module: ModuleType, status: PluginStatus | None) -> None:
        if status is None:
            status = PluginStatus(name=name, module=module.__name__, distribution="bmshost")
            self.status[name] = status
        try:
            self.pm.register(module, name=name)
        except ValueError as exc:  # already registered under another name
            status.error = f"register failed: {exc}"
            log.error("plugin %s skipped: %s", name, status.error)
            return
        except pluggy.PluginValidationError as exc:
            status.error = f"invalid hook implementation: {exc}"
            log.error("plugin %s skipped: %s", name, status.error)
            return
        unknown = self._unknown_hooks(module)
        if unknown:
            self.pm.unregister(name=name)
            known = [h for h, _ in REGISTRATION_HOOKS] + ["bmshost_startup", "bmshost_shutdown"]
            status.error = (
                f"implements unknown hook(s) {', '.join(unknown)} "
                f"(known hooks: {', '.join(known)})"
            )
            log.error("plugin %s skipped: %s", name, status.error)
            return
        status.loaded = True

    def _unknown_hooks(self, module: ModuleType) -> list[str]:
        out = []
        for attr in dir(module):
            obj = getattr(module, attr)
            if not callable(obj) or self.pm.parse_hookimpl_opts(module, attr) is None:
                continue
            if not hasattr(hookspecs, attr):
                out.append(attr)
        return sorted(out)

    def _call_registrations(self) -> None:
        for status in list(self.status.values()):
            if not status.loaded:
                continue
            plugin = self.pm.get_plugin(status.name)
            if plugin is None:
                continue
            self.registries.set_plugin(status.name)
            try:
                for hook_name, reg_attr in REGISTRATION_HOOKS:
                    fn = getattr(plugin, hook_name, None)
                    if fn is None or self.pm.parse_hookimpl_opts(plugin, hook_name) is None:
                        continue
                    registry = getattr(self.registries, reg_attr)
                    before = set(registry.names())
                    fn(registry=registry)
                    added = sorted(set(registry.names()) - before)
                    if added:
                        status.registered.setdefault(reg_attr, []).extend(added)
            except Exception as exc:
                self.registries.drop_plugin(status.name)
                self.pm.unregister(name=status.name)
                status.loaded = False
                status.registered.clear()
                status.error = f"registration failed: {exc}"
                log.error("plugin %s disabled: %s", status.name, status.error)
        self.registries.set_plugin("?")

    # -- lifecycle -----------------------------------------------------------------------------

    def call_lifecycle(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin; an exception is logged, not propagated."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**kwargs)
            except Exception:
                log.exception("plugin %s: %s failed", impl.plugin_name, hook_name)

    @property
    def errors(self) -> list[PluginStatus]:
        return [s for s in self.status.values() if s.error]


def load_plugins(selection: Selection | None = None, **kwargs: Any) -> PluginManager:
    manager = PluginManager()
    manager.load(selection, **kwargs)
    return manager


__all__ = ["PluginError", "PluginManager", "PluginStatus", "Selection", "load_plugins"]
