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
from shopmtl import Prior
from shopmtl.registry import hookspecs
from shopmtl.registry import spec as contract
from shopmtl.registry.manager import ENV_PLUGINS, ENV_STRICT

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")

_MARKER = re.compile(
    r"<!--\s*test:\s*(file\s+(?P<path>\S+)|(?P<run>run))\s*-->\s*\n```[^\n]*\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)


def hook_names() -> list[str]:
    """Every hook spec in registry/hookspecs.py (functions carrying pluggy's spec marker)."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, marker)
    ]


def section(heading_pattern: str, text: str = TEXT) -> str | None:
    """The text under the first heading matching ``heading_pattern``, up to the next heading of any level <= it."""
    match = re.search(rf"^(#+) {heading_pattern}.*$", text, re.MULTILINE)
    if match is None:
        return None
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


#: The contract classes whose fields docs/plugins.md documents in a table each.
CONTRACT_CLASSES = [
    contract.TaskSpec,
    contract.BuildContext,
    contract.EvalBatch,
    contract.MetricSpec,
    contract.HeadSpec,
    contract.HeadInput,
    contract.DerivedFeatures,
    contract.TaskData,
    Prior,
]


def test_hookspecs_are_found():
    assert {"register_tasks", "on_run_start", "on_evaluation", "on_checkpoint_saved"} <= set(
        hook_names()
    )


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
        assert f"Added in {added.group(1)}" in body, (
            f"say when {hook!r} was added: '*Added in {added.group(1)}.*'"
        )


@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=lambda c: getattr(c, "__name__", "missing"))
def test_every_contract_field_is_documented(cls):
    body = section(rf"`{cls.__name__}`")
    assert body is not None, f"docs/plugins.md has no '### `{cls.__name__}`' section"
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if not re.search(rf"^\| `{f.name}` \|", body, re.MULTILINE)
    ]
    assert not missing, (
        f"{cls.__name__} field(s) {missing} have no row '| `field` | ... |' in docs/plugins.md"
    )


def test_settings_commands_and_versions_are_documented():
    from shopmtl.core.cli.plugins import check, new_plugin
    from shopmtl.registry.hookspecs import HOOK_API_VERSION

    for word in (
        ENV_PLUGINS,
        ENV_STRICT,
        "SHOPMTL_HOOK_API",
        "--block",
        "--strict-plugins",
        "plugins.blocked",
        "plugins.strict",
        "optionalhook",
        'pytest_plugins = ["shopmtl.testing"]',
    ):
        assert word in TEXT, f"docs/plugins.md does not mention {word}"
    assert f"the current hook API is **{HOOK_API_VERSION}**" in TEXT, (
        "update the current hook API version"
    )
    for command in (check, new_plugin):
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.opts[0] in TEXT, (
                    f"option {param.opts[0]} of {command.name} is not documented"
                )


def test_every_name_of_shopmtl_testing_is_documented():
    import shopmtl.testing as kit

    body = section(r"The test kit")
    names = [n for n in kit.__all__ if n not in ("TrainResult", "TINY_ENCODER")] + [
        "shopmtl_plugins"
    ]
    missing = [n for n in names if f"| `{n}" not in body]
    assert not missing, f"shopmtl.testing names {missing} are not in the test kit table"


# --------------------------------------------------------------- the tutorial, run


def marked_blocks() -> list[tuple[str, str]]:
    """``("file", path)`` / ``("run", "")`` with each marked block's text, in page order."""
    return [
        ("run" if m.group("run") else "file:" + m.group("path"), m.group("body"))
        for m in _MARKER.finditer(TEXT)
    ]


def test_marked_blocks_are_found():
    kinds = [kind for kind, _ in marked_blocks()]
    assert "file:shopmtl_bulk/plugin.py" in kinds and "file:tests/test_plugin.py" in kinds
    assert kinds.count("run") >= 3
    # every marker comment is followed by a fenced block (a marker above prose would be silently ignored)
    assert len(kinds) == len(re.findall(r"^<!-- test:", TEXT, re.MULTILINE))


def package_roots() -> list[str]:
    """The tutorial packages: folders (relative, "" = the top) of every marked ``pyproject.toml``."""
    return [
        str(Path(kind.removeprefix("file:")).parent).replace(".", "")
        for kind, _ in marked_blocks()
        if kind.endswith("pyproject.toml")
    ]


def test_tutorial_runs(tmp_path, monkeypatch):
    """Write the tutorials' files, run their code, install nothing: each package's tests pass."""
    monkeypatch.delenv(ENV_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_STRICT, raising=False)
    monkeypatch.chdir(tmp_path)
    roots = package_roots()
    assert roots == ["", "shopmtl-reviews"], roots
    for root in roots:
        (tmp_path / root).mkdir(
            exist_ok=True
        )  # before it goes on sys.path: a missing folder is cached as such
        monkeypatch.syspath_prepend(str(tmp_path / root))
    for module in [
        m
        for m in sys.modules
        if m.split(".")[0] in ("shopmtl_bulk", "shopmtl_extras", "shopmtl_reviews")
    ]:
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

    for root in roots:
        package = tmp_path / root
        code = pytest.main(
            [
                str(package / "tests"),
                "-q",
                "-p",
                "no:cacheprovider",
                "--import-mode=importlib",
                "--rootdir",
                str(package),
                "-W",
                "ignore::pytest.PytestAssertRewriteWarning",
            ]
        )
        assert code == 0, (
            f"the tests of the tutorial package in {root or '.'!r} failed (output above)"
        )

        # The entry point names a module the tutorial wrote, which defines the hook.
        tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
        project = tomllib.loads((package / "pyproject.toml").read_text())
        ((name, target),) = project["project"]["entry-points"]["shopmtl"].items()
        assert (package / (target.replace(".", "/") + ".py")).is_file(), (
            f"entry point {name} = {target}: no such module"
        )
        assert project["tool"]["setuptools"]["packages"] == [target.split(".")[0]]

    _own_data_is_in_the_wheel(tmp_path / "shopmtl-reviews", tmp_path / "dist")


def _own_data_is_in_the_wheel(package: Path, dist: Path) -> None:
    """Build the second tutorial's wheel (no index, no isolation): its CSV must be inside."""
    import subprocess
    import zipfile

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(package),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = dist.glob("shopmtl_reviews-*.whl")
    assert "shopmtl_reviews/data/reviews.csv" in zipfile.ZipFile(wheel).namelist(), (
        "package-data left the CSV out"
    )


def test_the_tutorials_smoke_config_is_the_one_new_plugin_writes():
    import yaml
    from shopmtl.core.authoring.scaffold import plugin_files

    (body,) = [b for kind, b in marked_blocks() if kind == "file:shopmtl-reviews/smoke.yaml"]
    assert yaml.safe_load(body) == yaml.safe_load(plugin_files("review_sentiment")["smoke.yaml"])


# ------------------------------------------------------- paths, options, contract defaults

REPO = DOC.parents[1]
#: Pages about this repository: every path-like `token` in them is a path in the repo,
#: except the files of a run directory (README's "A run directory holds" table).
REPO_PAGES = ("README.md", "docs/tasks.md", "plugins/data/README.md")
RUN_DIR_ENTRIES = ("runs/", "model/", "checkpoints/")
_PATH_TOKEN = re.compile(r"^[\w.-]+(?:/[\w.-]+)*(?:/|\.\w+)$")


def _named_paths(page: str) -> list[str]:
    """Path-like backticked tokens (``a/b.py``, ``dir/``) of ``page``, and its relative links, as repo paths."""
    path = REPO / page
    text = path.read_text(encoding="utf-8")
    tokens = [t for t in re.findall(r"`([^`\s]+)`", text) if "/" in t and _PATH_TOKEN.match(t)]
    prose = re.sub(
        r"```.*?```", "", text, flags=re.S
    )  # code such as `self.maps[task](pooled)` is no link
    links = [t for t in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", prose) if "://" not in t]
    resolved = [str((path.parent / link).resolve().relative_to(REPO)) for link in links]
    return [*tokens, *resolved]


@pytest.mark.parametrize("page", [*REPO_PAGES, "docs/plugins.md"])
def test_paths_the_docs_name_exist(page):
    named = _named_paths(page)
    if (
        page == "docs/plugins.md"
    ):  # the tutorial names its own package's files: check only shopmtl's folders
        named = [
            p
            for p in named
            if p.split("/")[0] in ("core", "registry", "plugins", "examples", "benchmarks", "docs")
        ]
    missing = sorted(
        {p for p in named if not p.startswith(RUN_DIR_ENTRIES) and not (REPO / p).exists()}
    )
    assert not missing, (
        f"{page} names path(s) {missing} that do not exist in the repository: fix the path"
    )


def test_bundled_data_readme_matches_the_file():
    import pyarrow.parquet as pq
    from shopmtl.plugins.retail import DEFAULT_DATA_PATH

    readme = (DEFAULT_DATA_PATH.parent / "README.md").read_text(encoding="utf-8")
    meta = pq.read_metadata(DEFAULT_DATA_PATH)
    assert f"{meta.num_rows:,} rows" in readme, (
        f"plugins/data/README.md must state the row count {meta.num_rows:,}"
    )
    undocumented = [c for c in meta.schema.names if f"| `{c}` |" not in readme]
    assert not undocumented, f"plugins/data/README.md has no row for column(s) {undocumented}"


def test_strict_plugins_is_documented_where_it_works():
    row = next(line for line in TEXT.splitlines() if line.startswith("| `--strict-plugins`"))
    assert "before or after the command" in row, (
        "say where --strict-plugins goes (both places work)"
    )


@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=lambda c: getattr(c, "__name__", "missing"))
def test_required_fields_are_named(cls):
    """Under each contract heading, one line says which fields a caller must give."""
    body = section(rf"`{cls.__name__}`")
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    expected = (
        "Required: " + ", ".join(f"`{name}`" for name in required) + "."
        if required
        else "Every field has a default."
    )
    assert expected in body, (
        f"the {cls.__name__} section must say which fields are required: {expected!r}"
    )


def test_readme_does_not_promise_more_than_loading_checks():
    """A plugin with a broken dataset builder loads; the README must say where that is found."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    paragraph = next(p for p in readme.split("\n\n") if "reported by name and skipped" in p)
    assert "`shopmtl plugins check NAME`" in paragraph and "`loaded`" in paragraph, paragraph


def test_every_declared_hook_api_version_is_the_current_one():
    """Docs, examples, the scaffold's template and the tests declare the hook API shopmtl has:
    a plugin author copies what they read, so a stale ``SHOPMTL_HOOK_API`` there misleads."""
    from shopmtl.registry.hookspecs import HOOK_API_VERSION

    declared = re.compile(r"""SHOPMTL_HOOK_API\s*=\s*["']([0-9][0-9.]*)["']""")
    places = [
        *(REPO / "docs").rglob("*.md"),
        *(REPO / "examples").rglob("*.py"),
        *(REPO / "examples").rglob("*.md"),
        *(REPO / "core" / "authoring").glob("*.py"),
    ]
    stale = [
        f"{path.relative_to(REPO)}: {version}"
        for path in places
        for version in declared.findall(path.read_text(encoding="utf-8"))
        if version != HOOK_API_VERSION
    ]
    assert not stale, f"declare SHOPMTL_HOOK_API = {HOOK_API_VERSION!r} in: {stale}"
    prose = re.compile(r"the current hook API is \*\*([0-9.]+)\*\*")
    assert prose.findall(TEXT) == [HOOK_API_VERSION]
