"""How ``shopmtl serve`` listens, batches and guards itself (no web framework imported: the CLI reads it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: The environment variable holding the API key when ``--api-key`` is not given.
API_KEY_ENV = "SHOPMTL_API_KEY"


@dataclass
class ServeSettings:
    """How the server listens, batches and refuses work it should not take."""

    host: str = "127.0.0.1"  # loopback only unless told otherwise
    port: int = 8000
    max_batch_rows: int = 256  # rows predicted together at most
    max_wait_ms: float = 5.0  # how long a batch of concurrent clients waits for more requests
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    api_key: str | None = None  # when set, /v1/* needs `Authorization: Bearer <key>` (else 401)
    max_rows: int = 1024  # rows per request at most (else 413)
    max_queue: int = 256  # requests waiting for or in the model at most (else 429)
    request_timeout: float = 60.0  # seconds a request may wait for its predictions (else 503)
    limit_concurrency: int = 1024  # uvicorn's cap on open connections and tasks (else its 503)

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError(
                f"the API key is empty: give a non-empty --api-key or {API_KEY_ENV}, or unset both"
            )
        for name in ("max_rows", "max_queue", "limit_concurrency", "max_batch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, not {self.request_timeout}")


def api_key_from(option: str | None) -> str | None:
    """The API key: ``--api-key`` if given, else ``$SHOPMTL_API_KEY``, else none.

    A key given but empty is kept (and refused by :class:`ServeSettings`): ``--api-key "$KEY"``
    with ``KEY`` unset must not start an open server.
    """
    return option if option is not None else os.environ.get(API_KEY_ENV)
