"""``python train_toy.py ARGS...``: the real ``shopmtl`` command line, with the toy plugins, in its own process.

The toy plugin (tests/toy_tasks.py) is not an installed entry point, so a subprocess
cannot get it from ``shopmtl`` itself; this runs the same click group with it as the
plugin source, exit code and all.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import toy_plugin_set  # noqa: E402
from shopmtl.core.cli import cli  # noqa: E402
from shopmtl.core.cli.common import PluginSource  # noqa: E402

if __name__ == "__main__":
    plugins = toy_plugin_set()
    cli.main(
        sys.argv[1:], prog_name="shopmtl", obj=PluginSource(load=lambda ctx, config=None: plugins)
    )
