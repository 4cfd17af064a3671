"""``shopmtl serve``: a trained run behind HTTP (FastAPI on uvicorn).

Routes: ``GET /health``, ``GET /v1/tasks``, ``POST /v1/predict/{task}`` (one route per
task, its request schema generated from the task's inputs, so ``/docs`` shows every
field) and ``POST /v1/predict`` (several tasks on the same rows, each text encoded
once). Requests are micro-batched (:mod:`shopmtl.core.deploy.batcher`). Errors are JSON
that names the problem: 422 with the row and field, 404 for a task the run lacks, 413
for a body over the limit; an unexpected failure is a 500 without a traceback (that
goes to the server's log) and the server keeps serving.
"""

# No `from __future__ import annotations`: FastAPI reads the generated request models
# from the endpoints' annotations, which must be real classes, not strings.

import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError
from shopmtl.core.deploy.batcher import MicroBatcher
from shopmtl.core.deploy.schemas import (
    MultiTaskRequest,
    Predictions,
    request_model,
    row_model,
    rows_as_records,
)
from shopmtl.core.deploy.serve_settings import ServeSettings
from shopmtl.core.deploy.service import ModelService, json_records

log = logging.getLogger(__name__)


def explain(errors: Sequence[Any]) -> dict[str, Any]:
    """pydantic errors as ``{"message": ..., "errors": [{"row", "field", "message"}]}``."""
    items = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body"]
        if error.get("type") == "json_invalid":
            items.append(
                {
                    "row": None,
                    "field": None,
                    "message": f"the body is not valid JSON ({error.get('ctx', {}).get('error', error['msg'])})",
                }
            )
            continue
        row = loc[1] if len(loc) > 1 and loc[0] == "rows" and isinstance(loc[1], int) else None
        field = str(loc[2]) if row is not None and len(loc) > 2 else None
        where = (
            f"rows[{row}].{field}"
            if field
            else f"rows[{row}]"
            if row is not None
            else ".".join(map(str, loc))
        )
        items.append({"row": row, "field": field, "message": f"{where or 'body'}: {error['msg']}"})
    shown = "; ".join(item["message"] for item in items[:5])
    more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
    return {"detail": shown + more, "errors": items}


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
            return await self._too_large(scope, receive, send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request body is over the server's limit of {self.limit:,} bytes: send fewer rows per request"

    async def _too_large(self, scope: dict, receive: Any, send: Any) -> None:
        await JSONResponse({"detail": self._message()}, status_code=413)(scope, receive, send)


def create_app(service: ModelService, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI application serving ``service`` (its model already loaded)."""
    settings = settings or ServeSettings()
    batcher = MicroBatcher(service.predict_batch, settings.max_batch_rows, settings.max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        log.info("serving %s: tasks %s", service.model_id, ", ".join(service.tasks))
        yield
        await batcher.stop()

    app = FastAPI(
        title=f"shopmtl: {service.run.config.run_name}",
        lifespan=lifespan,
        description="Predictions of a trained shopmtl run. Each task's request schema lists its inputs.",
    )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    _add_error_handlers(app)

    async def predict(tasks: Sequence[str], records: list[dict[str, Any]]) -> dict[str, Any]:
        if not records:
            return {"model": service.model_id, "predictions": []}
        frame = pd.DataFrame.from_records(records, columns=list(records[0]))
        try:
            predicted = await batcher.submit(tasks, frame)
        except ValueError as error:  # a RunError and the like: the rows, not the server
            raise HTTPException(422, str(error)) from None
        return {"model": service.model_id, "predictions": json_records(predicted)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """``ok`` once the model is loaded."""
        return {"status": "ok", "model": service.model_id}

    @app.get("/v1/tasks")
    async def tasks() -> dict[str, Any]:
        """Each task's inputs, outputs, labels and classes, and the model id."""
        return service.description

    for task in service.tasks:
        _add_task_route(
            app,
            task,
            request_model(task, row_model(f"{task}_row", [service.run.specs[task]])),
            predict,
        )

    @app.post("/v1/predict/{task}", include_in_schema=False)
    async def unknown_task(task: str) -> None:
        raise HTTPException(
            404, f"this server has no task '{task}'; it serves: {', '.join(service.tasks)}"
        )

    models: dict[tuple[str, ...], TypeAdapter] = {}

    @app.post("/v1/predict", response_model=Predictions)
    async def predict_many(body: MultiTaskRequest) -> dict[str, Any]:
        """Several tasks on the same rows; columns are named ``TASK.COLUMN``."""
        names = tuple(dict.fromkeys(body.tasks))
        unknown = [t for t in names if t not in service.tasks]
        if unknown:
            raise HTTPException(
                404,
                f"this server has no task {', '.join(map(repr, unknown))}; "
                f"it serves: {', '.join(service.tasks)}",
            )
        if names not in models:
            row = row_model("_".join(names) + "_row", [service.run.specs[t] for t in names])
            models[names] = TypeAdapter(list[row])
        try:
            rows = models[names].validate_python(body.rows)
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": ("body", "rows", *e["loc"])} for e in error.errors()]
            ) from None
        return await predict(names, rows_as_records(rows))

    return app


def _add_task_route(app: FastAPI, task: str, model: type[BaseModel], predict: Any) -> None:
    async def endpoint(body: Any) -> dict[str, Any]:
        return await predict((task,), rows_as_records(body.rows))

    endpoint.__annotations__ = {"body": model, "return": dict[str, Any]}
    app.add_api_route(
        f"/v1/predict/{task}",
        endpoint,
        methods=["POST"],
        response_model=Predictions,
        summary=f"Predict {task}",
        name=f"predict_{task}",
    )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(explain(error.errors()), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(error).__name__}); the server log has the details"},
            status_code=500,
        )


def run_server(service: ModelService, settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM, then finish the requests in flight and return (exit status 0)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(service, settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    # uvicorn shuts down gracefully on the signal, then raises it again for the handler it
    # found installed: make that handler a clean exit instead of a kill or a traceback.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _exit_cleanly)
    uvicorn.Server(config).run()


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)
