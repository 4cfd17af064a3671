"""How ``shopmtl serve`` listens and batches (no web framework imported: the CLI reads it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeSettings:
    """How the server listens and batches."""

    host: str = "127.0.0.1"  # loopback only unless told otherwise
    port: int = 8000
    max_batch_rows: int = 256  # rows predicted together at most
    max_wait_ms: float = 5.0  # how long a batch of concurrent clients waits for more requests
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
