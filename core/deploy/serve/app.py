"""The FastAPI application: routes, and which errors each of them declares and sends.

Routes: ``GET /health`` (always open), ``GET /v1/tasks``, ``POST /v1/predict/{task}`` (one
route per task, its request schema generated from the task's inputs, so ``/docs`` shows
every field) and ``POST /v1/predict`` (several tasks on the same rows, each text encoded
once). With an API key set, every ``/v1/*`` route needs it (:mod:`.guards`). Requests are
micro-batched through a bounded queue (:mod:`.batcher`). Every error is one JSON shape
(:mod:`.errors`), declared in the OpenAPI document for the statuses each route can send.
"""

# No `from __future__ import annotations`: FastAPI reads the generated request models
# from the endpoints' annotations, which must be real classes, not strings.

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from shopmtl.core.deploy.serve.batcher import MicroBatcher, QueueFull
from shopmtl.core.deploy.serve.errors import ApiError, add_error_handlers, responses
from shopmtl.core.deploy.serve.guards import BearerAuth, BodyLimit, check_rows, declare_bearer
from shopmtl.core.deploy.serve.schemas import (
    Predictions,
    multi_task_request,
    request_model,
    row_model,
    rows_as_records,
)
from shopmtl.core.deploy.serve.service import ModelService, json_records
from shopmtl.core.deploy.serve.settings import ServeSettings

log = logging.getLogger(__name__)

Predict = Callable[[Sequence[str], list[dict[str, Any]]], Awaitable[dict[str, Any]]]
#: The errors a prediction route can send (401 is added where a key is set).
PREDICT_ERRORS = responses(413, 422, 429, 500, 503)


def create_app(service: ModelService, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI application serving ``service`` (its model already loaded)."""
    settings = settings or ServeSettings()
    batcher = MicroBatcher(
        service.predict_batch,
        settings.max_batch_rows,
        settings.max_wait_ms,
        settings.max_queue,
        settings.request_timeout,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        log.info("serving %s: tasks %s", service.model_id, ", ".join(service.tasks))
        yield
        await batcher.stop()

    app = FastAPI(
        title=f"shopmtl: {service.run.config.run_name}",
        lifespan=lifespan,
        description="Predictions of a trained shopmtl run. Each task's request schema lists its "
        'inputs. Every error is `{"error": {"code", "message", "details"}}`.',
    )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(BearerAuth, api_key=settings.api_key)  # outermost: checked first
        declare_bearer(app)
    add_error_handlers(app)
    _add_routes(app, service, _predictor(service, batcher, settings), settings.max_rows)
    return app


def _predictor(service: ModelService, batcher: MicroBatcher, settings: ServeSettings) -> Predict:
    """The prediction every route runs: the row cap, then the queue, in words when refused."""

    async def predict(tasks: Sequence[str], records: list[dict[str, Any]]) -> dict[str, Any]:
        check_rows(len(records), settings.max_rows)
        if not records:
            return {"model": service.model_id, "predictions": []}
        frame = pd.DataFrame.from_records(records, columns=list(records[0]))
        try:
            predicted = await batcher.submit(tasks, frame)
        except QueueFull:
            raise ApiError(
                429,
                "queue_full",
                f"{settings.max_queue} requests are already waiting for the model "
                "(--max-queue): retry after the time in Retry-After",
                {"max_queue": settings.max_queue},
                {"Retry-After": "1"},
            ) from None
        except asyncio.TimeoutError:
            raise ApiError(
                503,
                "timeout",
                f"no predictions within {settings.request_timeout:g} s (--request-timeout): "
                "the server is busy; retry later or send fewer rows",
                {"request_timeout": settings.request_timeout},
                {"Retry-After": "1"},
            ) from None
        except ValueError as error:  # a RunError and the like: the rows, not the server
            raise ApiError(422, "invalid_request", str(error)) from None
        return {"model": service.model_id, "predictions": json_records(predicted)}

    return predict


def _add_routes(app: FastAPI, service: ModelService, predict: Predict, max_rows: int) -> None:
    @app.get("/health")
    async def health() -> dict[str, str]:
        """``ok`` once the model is loaded (open even when an API key is set)."""
        return {"status": "ok", "model": service.model_id}

    @app.get("/v1/tasks")
    async def tasks() -> dict[str, Any]:
        """Each task's inputs, outputs, labels and classes, and the model id."""
        return service.description

    rows = {task: row_model(f"{task}_row", [service.run.specs[task]]) for task in service.tasks}
    for task, row in rows.items():
        _add_task_route(app, task, request_model(task, row, max_rows), predict)

    @app.post("/v1/predict/{task}", include_in_schema=False)
    async def unknown_task(task: str) -> None:
        raise ApiError(
            404,
            "not_found",
            f"this server has no task '{task}'; it serves: {', '.join(service.tasks)}",
        )

    rows_of: dict[tuple[str, ...], TypeAdapter] = {}
    request = multi_task_request(rows, max_rows)

    async def predict_many(body: Any) -> dict[str, Any]:
        """Several tasks on the same rows; columns are named ``TASK.COLUMN``."""
        names = tuple(dict.fromkeys(body.tasks))
        if names not in rows_of:
            row = row_model("_".join(names) + "_row", [service.run.specs[t] for t in names])
            rows_of[names] = TypeAdapter(list[row])
        try:
            rows = rows_of[names].validate_python(body.rows)
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": ("body", "rows", *e["loc"])} for e in error.errors()]
            ) from None
        return await predict(names, rows_as_records(rows))

    predict_many.__annotations__ = {"body": request, "return": dict[str, Any]}
    app.add_api_route(
        "/v1/predict",
        predict_many,
        methods=["POST"],
        response_model=Predictions,
        responses=PREDICT_ERRORS,
    )


def _add_task_route(app: FastAPI, task: str, model: type[BaseModel], predict: Predict) -> None:
    async def endpoint(body: Any) -> dict[str, Any]:
        return await predict((task,), rows_as_records(body.rows))

    endpoint.__annotations__ = {"body": model, "return": dict[str, Any]}
    app.add_api_route(
        f"/v1/predict/{task}",
        endpoint,
        methods=["POST"],
        response_model=Predictions,
        responses=PREDICT_ERRORS,
        summary=f"Predict {task}",
        name=f"predict_{task}",
    )
