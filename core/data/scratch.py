"""A process's scratch folder: rows it keeps on disk while it runs, removed when it ends.

Under the cache root (``$SHOPMTL_CACHE_DIR``), which is sized for the data already. A
folder is named by host and process id, so a folder left by a process that was killed
(no clean-up ran) is recognised and removed by the next run on the same host.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from shopmtl.registry.cachedir import cache_root


def scratch_folder() -> tempfile.TemporaryDirectory:
    """A new scratch folder for this process; it is removed by ``cleanup()``, or when collected."""
    root = cache_root() / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    remove_abandoned(root, host)
    return tempfile.TemporaryDirectory(
        prefix=f"{host}-{os.getpid()}-", dir=root, ignore_cleanup_errors=True
    )


def remove_abandoned(root: Path, host: str) -> None:
    """Remove the folders in ``root`` of processes on ``host`` that no longer run."""
    for folder in root.glob(f"{host}-*-*"):
        try:
            pid = int(folder.name[len(host) + 1 :].split("-")[0])
        except ValueError:
            continue
        if not _running(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True
