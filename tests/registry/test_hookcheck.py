"""The registry stays light and self-contained, and a deprecated hook warns naming the plugin."""

from __future__ import annotations

import subprocess
import sys

import pytest
from shopmtl import hookimpl
from shopmtl.registry.manager import (
    load_plugins,
)

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")


# ------------------------------------------------------------------------ architecture


def test_registry_imports_nothing_of_core_or_plugins_and_stays_light():
    code = (
        "import sys\n"
        "from shopmtl.registry.manager import load_plugins\n"
        "load_plugins([], entry_points=[])\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('shopmtl.core', 'shopmtl.plugins')) or m == 'torch')\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_deprecated_hook_warns_naming_the_plugin():
    import pluggy

    class FutureSpecs:
        @pluggy.HookspecMarker("shopmtl")(
            warn_on_impl=DeprecationWarning("use register_tasks instead; removed in 2.0")
        )
        def register_task(self, task):
            """An old hook kept for compatibility."""

    class OldPlugin:
        @hookimpl
        def register_task(self, task):
            pass

        @hookimpl
        def register_tasks(self, register):
            pass

    from shopmtl.registry import manager

    original = manager.pluggy.PluginManager.add_hookspecs

    def add_with_future(self, module_or_class):
        original(self, module_or_class)
        if module_or_class is not FutureSpecs:
            original(self, FutureSpecs)

    import unittest.mock

    with unittest.mock.patch.object(manager.pluggy.PluginManager, "add_hookspecs", add_with_future):
        with pytest.warns(DeprecationWarning) as caught:
            plugins = load_plugins([("oldie", OldPlugin())], only=[])
    messages = [str(w.message) for w in caught]
    assert any("'oldie'" in m and "register_task" in m and "removed in 2.0" in m for m in messages)
    assert "oldie" in plugins.versions()  # deprecated, not broken: it still loads
