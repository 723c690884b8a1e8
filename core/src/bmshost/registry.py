"""Registry objects handed to the registration hooks. Each rejects duplicate names.

A plugin's ``bmshost_register_drivers(registry)`` calls ``registry.add(DriverSpec(...))``; the
registry records which plugin added what, so ``bmshost plugins`` can show it and a clash names
both plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import attrs

from bmshost.driver import DriverSpec
from bmshost.errors import RegistrationError
from bmshost.sink import SinkSpec
from bmshost.stage import StageSpec


@attrs.frozen(slots=True, kw_only=True)
class TransportSpec:
    """A link kind, addressed by URL scheme(s)."""

    name: str  # "serial"
    schemes: tuple[str, ...]  # ("serial", "tcp", "socket", "rfc2217")
    kind: str  # "stream" or "can"
    factory: Any  # Callable[[LinkUrl, Mapping[str, Any]], BaseLink] or lazy ref
    description: str = ""
    # attrs class for a ``[transports.<name>]`` table (adapter-wide settings such as the BLE
    # connection slots); when set, the factory is also called with ``options=<instance>``
    options: type | None = None


T = TypeVar("T")


class Registry(Generic[T]):
    """Name → spec, with the registering plugin remembered."""

    what = "entry"

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._owner: dict[str, str] = {}
        self.current_plugin = "?"  # set by the plugin manager around each hook call

    def _key(self, spec: T) -> str:
        return str(getattr(spec, "name"))  # noqa: B009 - every spec type has a name

    def _validate(self, spec: T) -> None:
        name = self._key(spec)
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise RegistrationError(f"{self.what} name {name!r} must be a non-empty identifier")

    def add(self, spec: T) -> T:
        self._validate(spec)
        name = self._key(spec)
        if name in self._items:
            raise RegistrationError(
                f"{self.what} {name!r} from plugin {self.current_plugin!r} is already registered "
                f"by plugin {self._owner[name]!r}"
            )
        self._items[name] = spec
        self._owner[name] = self.current_plugin
        return spec

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def owner(self, name: str) -> str:
        return self._owner.get(name, "?")

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def drop_plugin(self, plugin: str) -> None:
        """Forget everything a plugin registered (it failed part-way)."""
        for name in [n for n, o in self._owner.items() if o == plugin]:
            del self._items[name]
            del self._owner[name]


class DriverRegistry(Registry[DriverSpec]):
    what = "driver"

    def _validate(self, spec: DriverSpec) -> None:
        super()._validate(spec)
        if not spec.variants:
            raise RegistrationError(f"driver {spec.name!r} registers no variant")
        seen: set[str] = set()
        for v in spec.variants:
            if v.name in seen:
                raise RegistrationError(f"driver {spec.name!r}: duplicate variant {v.name!r}")
            seen.add(v.name)


class TransportRegistry(Registry[TransportSpec]):
    what = "transport"

    def _validate(self, spec: TransportSpec) -> None:
        super()._validate(spec)
        for scheme in spec.schemes:
            for other in self:
                if scheme in other.schemes:
                    raise RegistrationError(
                        f"transport {spec.name!r} from plugin {self.current_plugin!r}: URL scheme "
                        f"{scheme!r} is already served by transport {other.name!r}"
                    )

    def for_scheme(self, scheme: str) -> TransportSpec | None:
        for spec in self:
            if scheme in spec.schemes:
                return spec
        return None


class StageRegistry(Registry[StageSpec]):
    what = "control stage"

    def ordered(self) -> list[StageSpec]:
        return sorted(self, key=lambda s: (s.order, s.name))


class SinkRegistry(Registry[SinkSpec]):
    what = "sink"


@attrs.frozen(slots=True, kw_only=True)
class CommandSpec:
    """A ``bmshost <name> ...`` sub-command contributed by a plugin (e.g. ``venus install``)."""

    name: str
    help: str
    configure: Any  # Callable[[argparse.ArgumentParser], None] or lazy ref
    run: Any  # Callable[[argparse.Namespace], int] or lazy ref; returns the exit status


class CommandRegistry(Registry[CommandSpec]):
    what = "command"


@attrs.define
class Registries:
    drivers: DriverRegistry = attrs.field(factory=DriverRegistry)
    transports: TransportRegistry = attrs.field(factory=TransportRegistry)
    stages: StageRegistry = attrs.field(factory=StageRegistry)
    sinks: SinkRegistry = attrs.field(factory=SinkRegistry)
    commands: CommandRegistry = attrs.field(factory=CommandRegistry)

    def all(self) -> tuple[Registry[Any], ...]:
        return (self.drivers, self.transports, self.stages, self.sinks, self.commands)

    def set_plugin(self, plugin: str) -> None:
        for r in self.all():
            r.current_plugin = plugin

    def drop_plugin(self, plugin: str) -> None:
        for r in self.all():
            r.drop_plugin(plugin)


Callback = Callable[..., Any]
