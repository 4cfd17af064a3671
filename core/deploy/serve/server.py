"""Run the app under uvicorn until SIGINT/SIGTERM, with its concurrency cap and exposure warning."""

from __future__ import annotations

import signal
import sys
from typing import Any

from shopmtl.core.deploy.serve.app import create_app
from shopmtl.core.deploy.serve.guards import exposure_warning
from shopmtl.core.deploy.serve.service import ModelService
from shopmtl.core.deploy.serve.settings import ServeSettings


def run_server(service: ModelService, settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM, then finish the requests in flight and return (exit status 0)."""
    import uvicorn

    warning = exposure_warning(settings.host, settings.api_key)
    if warning:
        # On stderr before uvicorn's own lines, whatever the logging set-up: it must be seen.
        print(f"\n{warning}\n", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        create_app(service, settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=10,
        # Past this many open connections and tasks uvicorn answers 503 itself, before the app:
        # the last guard; --max-queue (429) is meant to refuse work well before it.
        limit_concurrency=settings.limit_concurrency,
    )
    # uvicorn shuts down gracefully on the signal, then raises it again for the handler it
    # found installed: make that handler a clean exit instead of a kill or a traceback.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _exit_cleanly)
    uvicorn.Server(config).run()


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)
