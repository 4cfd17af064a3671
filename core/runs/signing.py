"""Optional HMAC signing of a run's manifests (``SHOPMTL_SIGNING_KEY``).

A manifest's sha256 entries catch corruption and any change that does not also rewrite
the manifest. Someone who can write the run directory can rewrite the manifest too, so
with ``SHOPMTL_SIGNING_KEY`` set, every manifest shopmtl writes carries an HMAC-SHA256
of its entries, and every manifest it reads must carry one made with the same key:

* key set, manifest signed with it           -> accepted;
* key set, manifest unsigned or another key  -> refused (it was not written by a holder of the key);
* key unset, manifest signed                 -> refused (set the key it was signed with).

The comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

SIGNING_KEY_ENV = "SHOPMTL_SIGNING_KEY"
ALGORITHM = "hmac-sha256"


class SignatureError(ValueError):
    """A manifest's signature is missing, unexpected or wrong; the message says which and what to do."""


def signing_key() -> bytes | None:
    """The key from ``SHOPMTL_SIGNING_KEY`` (``None`` when unset or empty)."""
    value = os.environ.get(SIGNING_KEY_ENV, "")
    return value.encode("utf-8") if value else None


def _payload(entries: Mapping[str, Any]) -> bytes:
    """The signed bytes: the manifest's entries as canonical JSON (sorted keys, no spaces)."""
    return json.dumps(entries, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(entries: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``signature`` record of ``entries`` under the current key (``None`` without one)."""
    key = signing_key()
    if key is None:
        return None
    digest = hmac.new(key, _payload(entries), hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "value": digest}


def check(where: str, entries: Mapping[str, Any], signature: object) -> None:
    """Refuse ``entries`` (read from manifest ``where``) unless its signature fits the current key."""
    key = signing_key()
    if signature is None and key is None:
        return
    if signature is None:
        raise SignatureError(
            f"{where} is not signed, but {SIGNING_KEY_ENV} is set: this run was not written by a "
            f"holder of the key; open it only if you trust its source (unset {SIGNING_KEY_ENV}, "
            "or pass --trust-unverified)"
        )
    if key is None:
        raise SignatureError(
            f"{where} is signed: set {SIGNING_KEY_ENV} to the key it was signed with to open it "
            "(or pass --trust-unverified to open it unchecked, at your own risk)"
        )
    value = signature.get("value") if isinstance(signature, dict) else None
    algorithm = signature.get("algorithm") if isinstance(signature, dict) else None
    expected = hmac.new(key, _payload(entries), hashlib.sha256).hexdigest()
    if algorithm != ALGORITHM or not isinstance(value, str):
        raise SignatureError(f"{where}: the signature is not an {ALGORITHM} record; the run cannot be verified")
    if not hmac.compare_digest(expected, value):
        raise SignatureError(
            f"{where}: the signature does not match {SIGNING_KEY_ENV}: the run was signed with "
            "another key, or its manifest was changed after signing; do not open it unless you "
            "trust its source"
        )
