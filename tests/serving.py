"""Shared by the tests that speak HTTP to ``shopmtl serve``: a live uvicorn server in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(
    base: str,
    path: str,
    body: object = None,
    raw: bytes | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
):
    """``(status, parsed JSON body)`` of one request (POST when a body is given)."""
    status, body, _ = exchange(base, path, body, raw, timeout, headers)
    return status, body


def exchange(
    base: str,
    path: str,
    body: object = None,
    raw: bytes | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
):
    """``(status, parsed JSON body, response headers)`` of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


@contextlib.contextmanager
def serving(app, port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free loopback port; its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=15)
