"""shopmtl's version, read from the installed distribution (pyproject.toml is the one place it is written).

It lives in the registry -- the ground floor -- so the plugin loader can stamp built-in
plugins with it without importing the package root above it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shopmtl")
except PackageNotFoundError:  # a source tree on sys.path that was never pip-installed
    __version__ = "0+unknown"
