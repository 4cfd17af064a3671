"""The ``shopmtl`` command, on top of every other room: ``cli`` is the click group, ``main`` the entry point.

One module per subcommand (``train``, ``run``: evaluate/predict, ``data``: data/tasks,
``plugins``, ``report``), shared helpers in :mod:`~shopmtl.core.cli.common`, the group in
:mod:`~shopmtl.core.cli.main`. Plugins travel in click's context object
(:class:`~shopmtl.core.cli.common.PluginSource`), never in a module global.
"""

from shopmtl.core.cli.common import PluginSource, friendly_errors, plugin_set
from shopmtl.core.cli.main import cli, main

__all__ = ["PluginSource", "cli", "friendly_errors", "main", "plugin_set"]
