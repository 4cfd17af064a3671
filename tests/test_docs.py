"""docs/plugins.md cannot rot: every hook and contract field documented, the tutorial executed.

The page's conventions (also stated in an HTML comment at its top):

* each hook of ``registry/hookspecs.py`` has a section ``### `name(args)``` under
  ``## Hook reference`` that names each argument in backticks;
* each field of ``TaskSpec``, ``BuildContext``, ``EvalBatch`` and ``MetricSpec`` has a
  table row ``| `field` |`` under its ``### `ClassName``` heading;
* a fenced block right after ``<!-- test: file PATH -->`` is written to ``PATH`` in a temp
  folder (appended when the path repeats); one after ``<!-- test: run -->`` is executed
  there, in order, in one namespace; then the tutorial's ``tests/`` are run with pytest.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import click
import pytest

from shopmtl.registry import hookspecs
from shopmtl.registry import spec as contract
from shopmtl.registry.manager import ENV_PLUGINS, ENV_STRICT

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")

_MARKER = re.compile(r"<!--\s*test:\s*(file\s+(?P<path>\S+)|(?P<run>run))\s*-->\s*\n```[^\n]*\n(?P<body>.*?)^```",
                     re.DOTALL | re.MULTILINE)


def hook_names() -> list[str]:
    """Every hook spec in registry/hookspecs.py (functions carrying pluggy's spec marker)."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)]


def section(heading_pattern: str, text: str = TEXT) -> str | None:
    """The text under the first heading matching ``heading_pattern``, up to the next heading of any level <= it."""
    match = re.search(rf"^(#+) {heading_pattern}.*$", text, re.MULTILINE)
    if match is None:
        return None
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def test_hookspecs_are_found():
    assert {"register_tasks", "on_run_start", "on_evaluation", "on_checkpoint_saved"} <= set(hook_names())


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_section_naming_its_arguments(hook):
    reference = section("Hook reference")
    assert reference is not None, "docs/plugins.md has no '## Hook reference' section"
    body = section(rf"`{hook}\(", reference)
    assert body is not None, (
        f"hook {hook!r} (registry/hookspecs.py) has no section in docs/plugins.md: add "
        f"'### `{hook}(...)`' under '## Hook reference' (copy a similar hook's section)"
    )
    args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    heading = re.search(rf"^### `{hook}\((?P<args>[^)]*)\)`", reference, re.MULTILINE)
    assert heading and [a.strip() for a in heading.group("args").split(",") if a.strip()] == args, (
        f"the heading of {hook!r} must list its arguments: ### `{hook}({', '.join(args)})`"
    )
    undocumented = [a for a in args if f"`{a}`" not in body]
    assert not undocumented, f"the section of {hook!r} does not describe argument(s) {undocumented}"
    spec_doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    added = re.search(r"versionadded::\s*(\S+)", spec_doc)
    if added:
        assert f"Added in {added.group(1)}" in body, f"say when {hook!r} was added: '*Added in {added.group(1)}.*'"


@pytest.mark.parametrize(
    "cls", [contract.TaskSpec, contract.BuildContext, contract.EvalBatch, contract.MetricSpec, contract.HeadSpec,
            contract.HeadInput, contract.DerivedFeatures],
    ids=lambda c: getattr(c, "__name__", "missing"),
)
def test_every_contract_field_is_documented(cls):
    body = section(rf"`{cls.__name__}`")
    assert body is not None, f"docs/plugins.md has no '### `{cls.__name__}`' section"
    missing = [f.name for f in dataclasses.fields(cls) if not re.search(rf"^\| `{f.name}` \|", body, re.MULTILINE)]
    assert not missing, f"{cls.__name__} field(s) {missing} have no row '| `field` | ... |' in docs/plugins.md"


def test_settings_commands_and_versions_are_documented():
    from shopmtl.core.cli.plugins import check, new_plugin
    from shopmtl.registry.hookspecs import HOOK_API_VERSION

    for word in (ENV_PLUGINS, ENV_STRICT, "SHOPMTL_HOOK_API", "--block", "--strict-plugins", "plugins.blocked",
                 "plugins.strict", "optionalhook", 'pytest_plugins = ["shopmtl.testing"]'):
        assert word in TEXT, f"docs/plugins.md does not mention {word}"
    assert f"the current hook API is **{HOOK_API_VERSION}**" in TEXT, "update the current hook API version"
    for command in (check, new_plugin):
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.opts[0] in TEXT, f"option {param.opts[0]} of {command.name} is not documented"


def test_every_name_of_shopmtl_testing_is_documented():
    import shopmtl.testing as kit

    body = section(r"The test kit")
    names = [n for n in kit.__all__ if n not in ("TrainResult", "TINY_ENCODER")] + ["shopmtl_plugins"]
    missing = [n for n in names if f"| `{n}" not in body]
    assert not missing, f"shopmtl.testing names {missing} are not in the test kit table"


# --------------------------------------------------------------- the tutorial, run


def marked_blocks() -> list[tuple[str, str]]:
    """``("file", path)`` / ``("run", "")`` with each marked block's text, in page order."""
    return [("run" if m.group("run") else "file:" + m.group("path"), m.group("body")) for m in _MARKER.finditer(TEXT)]


def test_marked_blocks_are_found():
    kinds = [kind for kind, _ in marked_blocks()]
    assert "file:shopmtl_bulk/plugin.py" in kinds and "file:tests/test_plugin.py" in kinds
    assert kinds.count("run") >= 3
    # every marker comment is followed by a fenced block (a marker above prose would be silently ignored)
    assert len(kinds) == len(re.findall(r"^<!-- test:", TEXT, re.MULTILINE))


def test_tutorial_runs(tmp_path, monkeypatch):
    """Write the tutorial's files, run its code, install nothing: its tests pass on the written package."""
    monkeypatch.delenv(ENV_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_STRICT, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m.split(".")[0] in ("shopmtl_bulk", "shopmtl_extras")]:
        monkeypatch.delitem(sys.modules, module)

    namespace: dict[str, object] = {"__name__": "__docs_tutorial__"}
    for kind, body in marked_blocks():
        if kind == "run":
            exec(compile(body, f"{DOC.name} (run block)", "exec"), namespace)  # noqa: S102 -- our own docs
            continue
        path = tmp_path / kind.removeprefix("file:")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(body + "\n")

    code = pytest.main([str(tmp_path / "tests"), "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                        "--rootdir", str(tmp_path), "-W", "ignore::pytest.PytestAssertRewriteWarning"])
    assert code == 0, "the tutorial's tests/test_plugin.py failed (output above)"

    # The entry point names a module the tutorial wrote, which defines the hook.
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    ((name, target),) = project["project"]["entry-points"]["shopmtl"].items()
    assert (tmp_path / (target.replace(".", "/") + ".py")).is_file(), f"entry point {name} = {target}: no such module"
    assert project["tool"]["setuptools"]["packages"] == [target.split(".")[0]]
