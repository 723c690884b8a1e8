"""docs/plugins.md stays true: its example plugin runs, and every hook has a section and a test."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

from bmshost import hookspecs
from bmshost.driver import SessionContext
from bmshost.lazy import resolve
from bmshost.plugins import PluginManager, Selection
from bmshost.testing import make_sim_link

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "plugins.md").read_text()


def _example_module() -> types.ModuleType:
    code = re.search(r"```python\n(.*?)```", DOC, re.S)
    assert code is not None
    module = types.ModuleType("bmshost_acme_doc_example")
    exec(compile(code.group(1), "docs/plugins.md", "exec"), module.__dict__)
    return module


async def test_documented_example_plugin_works() -> None:
    manager = PluginManager()
    manager.load(Selection(drivers=frozenset(), schemes=frozenset(), sinks=frozenset()),
                 extra_modules=[_example_module()])
    spec = manager.registries.drivers.get("acme")
    assert spec is not None
    variant = spec.variant(None)
    sim = resolve(variant.simulator)(cells=4, soc=60)
    link = make_sim_link(sim, clock=lambda: 0.0)
    await link.open()
    session = resolve(variant.session)(SessionContext(link=link, variant=variant, options=None))
    sample = await session.connect()
    assert sample.soc == 60 and sample.cell_voltages == [3.36] * 4 and sample.power is not None


def test_every_hookspec_has_a_doc_section_and_a_test() -> None:
    hooks = [name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("bmshost_")]
    assert len(hooks) == 7
    tests = "\n".join(p.read_text() for p in (ROOT / "core" / "tests").glob("test_*.py") if p.name != Path(__file__).name)
    for hook in hooks:
        assert f"### `{hook}`" in DOC, f"docs/plugins.md has no section for {hook}"
        assert hook in tests, f"no test mentions {hook}"
