"""``shopmtl plugins`` lists installed plugins from their metadata: none of their code runs."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
from click.testing import CliRunner
from shopmtl.core.cli import cli
from shopmtl.core.config import load_config
from shopmtl.registry.manager import load_plugins

pytestmark = pytest.mark.usefixtures("clean_plugin_env")


class _Dist:
    version = "9.9.9"
    metadata = {"Name": "shopmtl-booby-trap"}


class TrapEntryPoint:
    """An installed plugin whose import would be noticed."""

    dist = _Dist()
    group = "shopmtl"

    def __init__(self, name: str, imported: list[str]) -> None:
        self.name, self.value, self._imported = name, f"{name}_module", imported

    def load(self) -> object:
        self._imported.append(self.name)
        raise ImportError("importing this plugin runs its code")


def test_listing_reads_metadata_only_and_load_imports(monkeypatch):
    imported: list[str] = []
    trap = TrapEntryPoint("trap", imported)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [trap])
    monkeypatch.setenv("SHOPMTL_PLUGINS", "trap")

    listed = CliRunner().invoke(cli, ["plugins", "--json"])
    assert listed.exit_code == 0, listed.output
    record = next(r for r in json.loads(listed.output) if r["name"] == "trap")
    assert record["status"] == "not imported" and record["imported"] is False
    assert record["version"] == "9.9.9" and record["distribution"] == "shopmtl-booby-trap"
    table = CliRunner().invoke(cli, ["plugins"])
    assert "not imported" in table.output and imported == []

    loaded = CliRunner().invoke(cli, ["plugins", "--json", "--load"])
    assert imported == ["trap"]  # --load imports, and reports what went wrong
    record = next(r for r in json.loads(loaded.output) if r["name"] == "trap")
    assert record["status"] == "skipped" and "runs its code" in record["error"]


def test_plugins_allow_is_a_config_key_beside_the_environment_variable():
    imported: list[str] = []
    eps = [TrapEntryPoint("kept", imported), TrapEntryPoint("other", imported)]
    found = load_plugins([], entry_points=eps, allow=["kept"], import_entry_points=False)
    assert [r.name for r in found.reports if r.source == "entry point"] == ["kept"]
    assert found.skipped == {"other": "not in plugins.allow"}
    both = load_plugins([], entry_points=eps, only=["other"], allow=["kept"])
    assert both.skipped == {"kept": "not selected by only=", "other": "not in plugins.allow"}
    assert imported == []  # neither allowed by both lists: nothing imported
    assert load_config(None, ["plugins.allow=[kept]"]).plugins.allow == ["kept"]
    assert load_config(None, []).plugins.allow is None
