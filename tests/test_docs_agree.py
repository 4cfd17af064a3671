"""The user's docs (README.md, docs/*.md, CHANGELOG.md) agree with the code, so they cannot rot:

* every config key they name exists (core/config.py), and every key the default run sets
  (core/defaults/default.yaml) is named somewhere; every YAML config block validates;
* every ``--flag`` they give a ``shopmtl`` command is one of that command's options (the click
  tree of ``shopmtl.core.cli``), and every other flag is a known tool's (accelerate, pip ...);
* every ``module.py: name`` they point at is defined in that module;
* one version: pyproject.toml's, which ``shopmtl.__version__`` reports, CHANGELOG.md's newest
  release and the deprecation shims' removal version follow from it;
* the Config docstring lists exactly what the default run changes from the code defaults;
* the README's table of figures is the one in benchmarks/RESULTS.md;
* no issue numbers (``#16``): the docs describe the product, the history is in CHANGELOG.md.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import click
import pytest
import tomllib
import yaml
from conftest import REPO
from pydantic import BaseModel

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
CHANGELOG = REPO / "CHANGELOG.md"
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO))


# ----------------------------------------------------------------------------- config keys

SECTIONS = ("encoder", "sharing", "data", "sampler", "training", "plugins", "tasks")
_KEY = re.compile(rf"(?<![\w/.$-])((?:{'|'.join(SECTIONS)})(?:\.(?:[A-Za-z_]\w*|<\w+>))+)(?![\w(])")
_FILE_SUFFIXES = {"py", "md", "yaml", "yml", "json", "toml", "parquet", "csv", "safetensors"}
#: A key that is named to show it being refused (README: "did you mean 'max_steps'?").
DELIBERATELY_WRONG = {"training.max_step"}


def config_keys(source: str) -> set[str]:
    """Dotted config keys named in ``source`` (``training.max_steps``, ``tasks.<name>.prior``),
    outside Python code (where ``plugins.samplers`` is an attribute of a variable)."""
    source = re.sub(r"^```python\n.*?^```", "", source, flags=re.DOTALL | re.MULTILINE)
    keys = {match.group(1).rstrip(".") for match in _KEY.finditer(source)}
    return {k for k in keys if k.rsplit(".", 1)[-1] not in _FILE_SUFFIXES}


def _model_of(annotation: object) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a key of the Config model, or None when it is. A section that maps
    free names (``tasks.<task>``, ``settings``, ``options``, ``columns``) accepts any name."""
    from shopmtl.core.config import Config

    model: type[BaseModel] | None = Config
    parts = key.split(".")
    i = 0
    while i < len(parts):
        assert model is not None
        field = model.model_fields.get(parts[i])
        if field is None:
            return (
                f"{'.'.join(parts[: i + 1])} is not a key (known: {', '.join(model.model_fields)})"
            )
        inner = _model_of(field.annotation)
        if inner is not None:
            model, i = inner, i + 1
            continue
        if typing.get_origin(field.annotation) is dict:
            value = typing.get_args(field.annotation)[1]
            if _model_of(value) is not None and i + 2 < len(parts):  # tasks.<name>.<key>
                model, i = _model_of(value), i + 2
                continue
        return None  # a leaf, or a mapping whose keys are free
    return None


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_config_key_named_exists(page):
    wrong = {
        key: key_problem(key)
        for key in config_keys(text(page)) - DELIBERATELY_WRONG
        if key_problem(key)
    }
    assert not wrong, f"{page_id(page)} names config keys the Config model lacks: {wrong}"


def test_the_key_finder_finds_keys_and_skips_paths():
    found = config_keys(
        "`training.max_steps=50` and `tasks.<name>.prior`, tasks.sales.settings.loss; "
        "core/mtl/sampler.py, registry/sharing.py, `data.path`. encoder.lora.r"
    )
    assert found == {
        "training.max_steps",
        "tasks.<name>.prior",
        "tasks.sales.settings.loss",
        "data.path",
        "encoder.lora.r",
    }
    assert key_problem("training.max_step") and key_problem("tasks.sales.priors")
    assert not key_problem("tasks.sales.settings.anything") and not key_problem("encoder.lora.r")


def _flat(raw: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        keys.add(dotted)
        if isinstance(value, dict):
            keys |= _flat(value, f"{dotted}.")
    return keys


def _generic(key: str) -> str:
    """``tasks.sales.prior`` -> ``tasks.<name>.prior``: how the docs name a per-task key."""
    parts = key.split(".")
    return (
        ".".join(["tasks", "<name>", *parts[2:]]) if parts[0] == "tasks" and len(parts) > 2 else key
    )


def test_every_key_of_the_default_run_is_named_in_the_docs():
    default = yaml.safe_load(text(REPO / "core" / "defaults" / "default.yaml"))
    named = set()
    for page in PAGES:
        named |= {_generic(k) for k in config_keys(text(page))}
        for block in yaml_blocks(text(page)):
            named |= {_generic(k) for k in _flat(block)}
    top = {"run_name", "seed"}  # top-level keys: named in the README's config block
    wanted = {_generic(k) for k in _flat(default) if "." in k or k in top}
    wanted = {k for k in wanted if k.count(".") > 0 or k in top}
    wanted -= {"tasks.<name>", *SECTIONS}
    missing = sorted(wanted - named)
    assert not missing, (
        f"core/defaults/default.yaml sets {missing}, which no page of the docs names: "
        "say what each does (README's config example or a docs page)"
    )


def yaml_blocks(source: str) -> list[dict]:
    """The YAML code blocks of a page that are configs (a top-level key of Config)."""
    from shopmtl.core.config import Config

    blocks = []
    for body in re.findall(r"^```ya?ml\n(.*?)^```", source, re.DOTALL | re.MULTILINE):
        raw = yaml.safe_load(body)
        if isinstance(raw, dict) and set(raw) & set(Config.model_fields):
            blocks.append(raw)
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_config_block_validates(page):
    from shopmtl.core.config import validate_config

    for raw in yaml_blocks(text(page)):
        validate_config(raw, source=f"a YAML block of {page_id(page)}")


# ----------------------------------------------------------------------------- CLI flags

#: Flags of other tools the docs show (accelerate launch, pip, tensorboard, ruff, schemathesis,
#: the benchmark scripts).
FOREIGN_FLAGS = {
    "--checks",
    "--max-examples",
    "--config_file",
    "--dynamo_backend",
    "--index-url",
    "--logdir",
    "--machine_rank",
    "--main_process_ip",
    "--main_process_port",
    "--mixed_precision",
    "--multi_gpu",
    "--num_machines",
    "--num_processes",
    "--use_fsdp",
    "--check",  # ruff format --check (make lint)
    "--clock",
    "--threads",
    "--quick",
    "--profile",
}


def command_flags() -> dict[tuple[str, ...], set[str]]:
    """Each command path of ``shopmtl`` (``()``, ``("plugins", "check")``) -> its flags."""
    from shopmtl.core.cli import cli

    found: dict[tuple[str, ...], set[str]] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        found[path] = {"--help", "-h"} | {
            o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")
        }
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(cli, ())
    return found


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
_SHOPMTL_LINE = re.compile(r"(?:^|[\s`(])(?:shopmtl|-m shopmtl\.core\.cli)\s+(?P<args>[^`\n]*)")


def flag_problems(source: str, flags: dict[tuple[str, ...], set[str]]) -> list[str]:
    """Flags of ``source`` that no command has, or that a ``shopmtl CMD ...`` line gives CMD
    although CMD (and the root group) lacks them."""
    known = set().union(*flags.values())
    problems = [
        f for f in sorted(set(_FLAG.findall(source))) if f not in known and f not in FOREIGN_FLAGS
    ]
    for match in _SHOPMTL_LINE.finditer(source):
        words = match.group("args").split()
        path: tuple[str, ...] = ()
        for word in words:
            if (*path, word) in flags:
                path = (*path, word)
            elif not word.startswith("-") and path:
                break  # an argument: the command is found
        if not path:
            continue
        allowed = flags[path] | flags[()]
        problems += [
            f"shopmtl {' '.join(path)} {flag}"
            for flag in _FLAG.findall(match.group("args"))
            if flag not in allowed and flag not in FOREIGN_FLAGS
        ]
    return problems


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_cli_flag_named_exists(page):
    problems = flag_problems(text(page), command_flags())
    assert not problems, (
        f"{page_id(page)} names flags no command has: {problems} "
        "(`shopmtl COMMAND --help` lists a command's options)"
    )


def test_the_flag_check_catches_a_wrong_flag():
    flags = command_flags()
    assert flag_problems("shopmtl predict runs/x --task a --input f --output g", flags) == []
    assert flag_problems("`shopmtl train --taks sales`", flags)
    assert flag_problems("shopmtl evaluate runs/x --chunk-rows 5", flags) == [
        "shopmtl evaluate --chunk-rows"
    ]


# ----------------------------------------------------------------------------- code references

_REFERENCE = re.compile(r"`((?:core|registry|plugins)/[\w/]+\.py): (\w+)`")


def current(source: str) -> str:
    """``source`` without its "Module map" section (old paths, kept for merging old branches)."""
    return re.sub(r"^## Module map.*?(?=^## |\Z)", "", source, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_module_name_pointed_at_is_defined_there(page):
    missing = [
        f"{path}: {name}"
        for path, name in _REFERENCE.findall(current(text(page)))
        if (REPO / path).is_file()
        and not re.search(
            rf"^\s*(?:def|class|async def)\s+{name}\b|^{name}\s*[:=]",
            text(REPO / path),
            re.MULTILINE,
        )
    ]
    assert not missing, f"{page_id(page)} points at names that are not defined: {missing}"


# ----------------------------------------------------------------------------- versions


def pyproject_version() -> str:
    return tomllib.loads(text(REPO / "pyproject.toml"))["project"]["version"]


def test_one_version_pyproject_package_and_changelog():
    import shopmtl

    version = pyproject_version()
    assert shopmtl.__version__ == version, (
        f"shopmtl.__version__ is {shopmtl.__version__}, pyproject.toml says {version}: "
        "reinstall (`make install` does it when pyproject.toml changes)"
    )
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", text(CHANGELOG), re.MULTILINE)
    assert releases and releases[0] == version, (
        f"CHANGELOG.md's newest release {releases[:1]} is not pyproject.toml's {version}"
    )


def test_shims_go_away_in_the_release_the_policy_names():
    from shopmtl.registry.deprecation import REMOVED_IN

    major, minor, _ = (int(p) for p in pyproject_version().split("."))
    assert REMOVED_IN == f"{major}.{minor + 1}.0", (
        "the version policy (CHANGELOG.md) removes a deprecated import path in the next minor release"
    )
    assert f"removed in {REMOVED_IN}" in text(CHANGELOG)


def test_versions_named_in_the_docs_are_releases_or_the_hook_api():
    from shopmtl.registry.hookspecs import HOOK_API_VERSION

    releases = set(re.findall(r"^## \[(\d+\.\d+\.\d+)\]", text(CHANGELOG), re.MULTILINE))
    releases |= {r.rsplit(".", 1)[0] for r in releases}  # "0.1" names 0.1.0
    for page in PAGES:
        for version in re.findall(r"shopmtl (\d+\.\d+(?:\.\d+)?)\b", text(page)):
            assert version in releases, f"{page_id(page)} names shopmtl {version}, not a release"
        for version in re.findall(r"hook API (?:version )?\**(\d+\.\d+)", text(page)):
            major, minor = (int(p) for p in version.split("."))
            current = tuple(int(p) for p in HOOK_API_VERSION.split("."))
            assert (major, minor) <= current, (
                f"{page_id(page)} names hook API {version}; the current one is {HOOK_API_VERSION}"
            )


# ----------------------------------------------------------------------------- defaults


def test_the_config_docstring_lists_what_the_default_run_changes():
    from shopmtl.core.config import Config, load_config

    default = load_config(None).model_dump(mode="json")
    code = Config().model_dump(mode="json")

    def changed(a: dict, b: dict, prefix: str = "") -> dict[str, object]:
        out = {}
        for key in sorted(set(a) | set(b)):
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict) and a[key]:
                out |= changed(a[key], b[key], f"{prefix}{key}.")
            elif a.get(key) != b.get(key):
                out[f"{prefix}{key}"] = a.get(key)
        return out

    differences = changed(default, code)
    doc = Config.__doc__ or ""
    listed = dict(re.findall(r"^\s*``([\w.]+)``: ``(.*?)``\s*$", doc, re.MULTILINE))
    expected = {k: str(v) for k, v in differences.items() if not k.startswith("tasks.")}
    assert listed == expected, (
        "Config's docstring must list each key core/defaults/default.yaml changes from the code "
        f"defaults, one ``key``: ``value`` line each; expected {expected}, found {listed}"
    )


# ----------------------------------------------------------------------------- figures

_TABLE_MARK = "<!-- figures: the default run -->"


def figures_table(source: str, where: str) -> str:
    assert _TABLE_MARK in source, f"{where} has no {_TABLE_MARK!r} line above its table"
    after = source.split(_TABLE_MARK, 1)[1].lstrip("\n")
    rows = []
    for line in after.splitlines():
        if not line.startswith("|"):
            break
        rows.append(line.strip())
    assert len(rows) > 2, f"no table right under {_TABLE_MARK!r} in {where}"
    return "\n".join(rows)


def test_the_readme_figures_are_benchmarks_results():
    readme = figures_table(text(README), "README.md")
    results = text(RESULTS)
    assert readme == figures_table(results, "benchmarks/RESULTS.md"), (
        "README.md's table of figures must be the one under the same mark in benchmarks/RESULTS.md"
    )
    copied = [row for row in readme.splitlines()[2:] if results.count(row) < 2]
    assert not copied, (
        f"rows {copied} of the current figures are not rows of a measured table in "
        "benchmarks/RESULTS.md (copy a measured row, with its section's command and machine)"
    )


# ----------------------------------------------------------------------------- no history


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_issue_numbers(page):
    # "#5-a-smoke-run" is a link to a numbered section, not an issue.
    found = re.findall(r"(?<![\w(])#\d+(?![\w-])|\bissues?[ -]#?\d+", text(page), re.IGNORECASE)
    assert not found, (
        f"{page_id(page)} refers to issues {found}: say what the product does; history goes "
        "to CHANGELOG.md or benchmarks/RESULTS.md"
    )


def test_the_keys_resume_may_change_are_the_codes():
    from shopmtl.core.config import SAFE_ON_RESUME

    page = text(REPO / "docs" / "training.md")
    bullet = next(b for b in page.split("\n- ") if b.startswith("`--resume` continues"))
    assert config_keys(bullet) == set(SAFE_ON_RESUME), (
        "docs/training.md's --resume bullet must list core/config.py's SAFE_ON_RESUME"
    )
