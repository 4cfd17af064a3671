"""Where shopmtl and its plugins keep what they can rebuild: cleaned tables, token ids."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SHOPMTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/shopmtl``, else ``~/.cache/shopmtl``.

    Everything under it is keyed by what it was built from and can be deleted at any time.
    """
    if os.environ.get("SHOPMTL_CACHE_DIR"):
        return Path(os.environ["SHOPMTL_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shopmtl"
