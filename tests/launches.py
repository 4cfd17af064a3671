"""Shared by the tests that start ``accelerate launch`` subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen) -> None:
    """Kill a launch and every worker it started (``Popen(start_new_session=True)``).

    A worker whose peer died waits in a collective for ever and keeps the output pipe
    open: killing only the launcher would leave the test (and CI) hanging on that pipe.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group has exited
    if process.poll() is None or process.stdout and not process.stdout.closed:
        process.communicate(timeout=60)
