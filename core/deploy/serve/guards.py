"""What the server refuses before the model sees a request: no key, too many bytes, too many rows.

* :class:`BearerAuth` -- with an API key set, every ``/v1/*`` request needs
  ``Authorization: Bearer KEY`` (compared in constant time), else 401; ``/health`` and the
  docs stay open. It runs first, so a client without the key learns nothing else.
* :class:`BodyLimit` -- a body over ``--max-body-bytes``, declared or streamed, is a 413.
* :func:`check_rows` -- more rows than ``--max-rows`` is a 413.
* :func:`exposure_warning` -- the words printed when a non-loopback address is bound without a key.
* :func:`declare_bearer` -- the security scheme in the OpenAPI document.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from shopmtl.core.deploy.serve.errors import ApiError, responses
from shopmtl.core.deploy.serve.settings import API_KEY_ENV

#: Paths that need the key when one is set.
GUARDED_PREFIX = "/v1/"
SCHEME = "bearer"


def _unauthorized(reason: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        f"{reason}: send the header `Authorization: Bearer <key>` with the server's API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


class BearerAuth:
    """ASGI middleware: 401 for a ``/v1/*`` request without ``Authorization: Bearer <api_key>``."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.expected = api_key.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIX):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization")
        scheme, _, token = (header or b"").partition(b" ")
        if header is None:
            error = _unauthorized("no API key")
        elif scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.expected):
            error = _unauthorized("wrong API key")
        else:
            return await self.app(scope, receive, send)
        await error.response()(scope, receive, send)


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.error().response()(scope, receive, send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise self.error()  # inside the app: its handler answers
            return message

        await self.app(scope, counted, send)

    def error(self) -> ApiError:
        return ApiError(
            413,
            "body_too_large",
            f"the request body is over the server's limit of {self.limit:,} bytes: "
            "send fewer rows per request",
            {"max_body_bytes": self.limit},
        )


def check_rows(rows: int, max_rows: int) -> None:
    """Raise a 413 :class:`ApiError` when a request holds more than ``max_rows`` rows."""
    if rows > max_rows:
        raise ApiError(
            413,
            "too_many_rows",
            f"{rows:,} rows in one request; this server takes at most {max_rows:,} "
            "(--max-rows): split the rows over several requests",
            {"max_rows": max_rows, "rows": rows},
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """The warning for serving on a non-loopback ``host`` without an API key (``None`` if safe)."""
    if api_key or is_loopback(host):
        return None
    return (
        f"WARNING: serving on {host}, reachable from other machines, WITHOUT an API key: "
        f"anyone who can reach this port can use the model. Set --api-key or {API_KEY_ENV}, "
        "or bind 127.0.0.1 behind a proxy that authenticates."
    )


def declare_bearer(app: FastAPI) -> None:
    """Declare the bearer scheme, and its 401, on every ``/v1/*`` operation of ``app``'s OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"the server's API key (--api-key or {API_KEY_ENV})",
                }
            }
            unauthorized = _openapi_response(401)
            for path, operations in schema["paths"].items():
                if path.startswith(GUARDED_PREFIX):
                    for operation in operations.values():
                        operation["security"] = [{SCHEME: []}]
                        operation["responses"]["401"] = unauthorized
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _openapi_response(status: int) -> dict[str, Any]:
    """The OpenAPI form of :func:`responses` for ``status`` (referencing ErrorResponse)."""
    declared = responses(status)[status]
    return {
        "description": declared["description"],
        "headers": declared.get("headers", {}),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
